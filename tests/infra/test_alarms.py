"""The alarms of template.yaml (issue 14): one SNS topic; every dead-letter queue, the work
queue's age, the launcher's and the router's errors, the router's throttles, a model that does
not load, and the monthly budget. moto's CloudFormation does not create alarms, metric filters or
budgets, so these are checked here, on the translated template (docs/infrastructure.md)."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from model_registry.resolve import LOAD_FAILED_MESSAGE
from tests.infra.sam import (
    ROOT,
    Template,
    dead_letter_queues,
    queue_alarm,
    resources_of,
    translated,
)


@pytest.fixture(scope="module")
def cfn() -> Template:
    return translated()


def alarms(cfn: Template) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources_of(cfn, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_one_topic(cfn: Template) -> None:
    assert len(alarms(cfn)) == 10
    for name, alarm in alarms(cfn).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm.get("AlarmDescription"), name
    assert cfn["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_the_email_subscription_is_optional(cfn: Template) -> None:
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert cfn["Parameters"]["AlarmEmail"]["Default"] == ""
    pattern = re.compile(cfn["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("ops@example.com")
    assert not pattern.fullmatch("not an address")


def test_each_dead_letter_queue_has_an_alarm(cfn: Template) -> None:
    queues = dead_letter_queues(cfn)
    assert queues == {
        "WorkDeadLetterQueue",
        "RouterDeadLetterQueue",
        "RouterEventsDeadLetterQueue",
        "LauncherDeadLetterQueue",
    }
    for queue in queues:
        alarm = queue_alarm(cfn, queue, "ApproximateNumberOfMessagesVisible")
        assert alarm is not None, f"no alarm on {queue}"
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_the_work_queue_age_alarm_uses_the_setting(cfn: Template) -> None:
    alarm = queue_alarm(cfn, "WorkQueue", "ApproximateAgeOfOldestMessage")
    assert alarm is not None
    assert alarm["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    parameter = cfn["Parameters"]["QueueAgeAlarmSeconds"]
    assert parameter["Default"] == 26 * 3600
    # Below the work queue's retention, or the alarm could never fire.
    retention = cfn["Resources"]["WorkQueue"]["Properties"]["MessageRetentionPeriod"]
    assert parameter["MaxValue"] <= retention


@pytest.mark.parametrize(
    ("function", "metric", "periods"),
    [
        ("LauncherFunction", "Errors", 1),
        ("RouterFunction", "Errors", 1),
        ("RouterFunction", "Throttles", 3),
    ],
)
def test_lambda_alarms(cfn: Template, function: str, metric: str, periods: int) -> None:
    (alarm,) = (
        a
        for a in alarms(cfn).values()
        if a["Namespace"] == "AWS/Lambda"
        and a["MetricName"] == metric
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    )
    assert (alarm["Statistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "Sum",
        0,
        periods,
    )


# ------------------------------------------------------------------ model-load failures


def filter_matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' unstructured filter syntax as the template uses it: space-separated
    terms (quoted phrases or words) that must all occur in the line, case-sensitive; a term
    starting with ? makes the terms an OR instead."""
    terms = shlex.split(pattern)
    assert terms, pattern
    if all(t.startswith("?") for t in terms):
        return any(t[1:] in line for t in terms)
    return all(t in line for t in terms)


@pytest.mark.parametrize(
    ("group", "metric"),
    [("WorkerLogGroup", "WorkerModelLoadFailures"), ("ServerLogGroup", "ServerModelLoadFailures")],
)
def test_a_model_that_does_not_load_raises_an_alarm(cfn: Template, group: str, metric: str) -> None:
    (flt,) = (
        f["Properties"]
        for f in resources_of(cfn, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["LogGroupName"] == {"Ref": group}
    )
    (transform,) = flt["MetricTransformations"]
    assert transform["MetricName"] == metric and transform["MetricValue"] == "1"
    pattern = flt["FilterPattern"]
    # The line both deployables log when the model cannot be had (server/runtime.py,
    # batch_worker/main.py), as the awslogs driver ships it: plain or inside a JSON record.
    failed = f"{LOAD_FAILED_MESSAGE}: model file model.safetensors: missing"
    for line in (failed, '{"level": "ERROR", "message": "' + failed + '"}'):
        assert filter_matches(pattern, line), line
    for line in ("model loaded", "model whisper-base ready on cuda in 4.20 s", "chunk failed"):
        assert not filter_matches(pattern, line), line
    (alarm,) = (a for a in alarms(cfn).values() if a["MetricName"] == metric)
    assert alarm["Namespace"] == transform["MetricNamespace"]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


def test_both_deployables_log_the_line_the_filter_matches() -> None:
    for path in ("server/runtime.py", "batch_worker/main.py"):
        assert "LOAD_FAILED_MESSAGE" in (ROOT / path).read_text(), path


def test_the_filter_pattern_is_documented() -> None:
    docs = (ROOT / "docs" / "infrastructure.md").read_text()
    (pattern,) = {
        f["Properties"]["FilterPattern"]
        for f in resources_of(translated(), "AWS::Logs::MetricFilter").values()
    }
    assert f"`{pattern}`" in docs


# ------------------------------------------------------------------ budget


def test_monthly_budget_notifies_the_topic(cfn: Template) -> None:
    (budget,) = resources_of(cfn, "AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    assert (props["Budget"]["BudgetType"], props["Budget"]["TimeUnit"]) == ("COST", "MONTHLY")
    kinds = set()
    for entry in props["NotificationsWithSubscribers"]:
        assert entry["Subscribers"] == [
            {"SubscriptionType": "SNS", "Address": {"Ref": "AlarmTopic"}}
        ]
        kinds.add(entry["Notification"]["NotificationType"])
    assert kinds == {"ACTUAL", "FORECASTED"}
    # Budgets may publish to the topic (CloudWatch too), for this account only.
    policy = cfn["Resources"]["AlarmTopicPolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert set(statement["Principal"]["Service"]) == {
        "budgets.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_docs_name_every_alarm(cfn: Template) -> None:
    docs = (ROOT / "docs" / "infrastructure.md").read_text()
    for name in [*alarms(cfn), "MonthlyCostBudget"]:
        assert f"`{name}`" in docs, name
