"""The midnight launcher against moto's SQS and EC2 (issue 6, P15).

Capacity errors are injected at the botocore seam: a ``before-call`` hook on the (moto-backed)
EC2 client answers RunInstances with an EC2 error for chosen candidates, as AWS would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from batch_worker import launcher_handler
from batch_worker.launcher import (
    ROLE_TAG_KEY,
    InvalidLaunchEventError,
    LaunchConfigError,
    LauncherDeps,
    LaunchRequest,
    NoCapacityError,
    candidates,
    parse_request,
    run_launcher,
)
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import LauncherSettings, load_settings

REGION = "eu-north-1"
NOW = datetime(2024, 5, 1, 0, 0, 7, tzinfo=UTC)
SCHEDULED = LaunchRequest(
    "drain", "schedule", scheduled_time=datetime(2024, 5, 1, tzinfo=UTC), execution_id="e1"
)
MANUAL = LaunchRequest("drain", "manual")
ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


@dataclass
class Cloud:
    sqs: Any
    ec2: Any
    queue_url: str
    template_id: str
    subnets: list[str]
    zones: list[str]
    tag: str
    run_calls: list[dict[str, Any]] = field(default_factory=list)

    def settings(self, **overrides: Any) -> LauncherSettings:
        values: dict[str, Any] = {
            "queue_url": self.queue_url,
            "launch_template_id": self.template_id,
            "launch_subnet_ids": self.subnets[:2],
            "batch_instance_tag": self.tag,
        }
        values.update(overrides)
        return load_settings(LauncherSettings, _env_file=None, **values)

    def deps(self, **overrides: Any) -> LauncherDeps:
        return LauncherDeps(self.settings(**overrides), self.sqs, self.ec2, clock=lambda: NOW)

    def enqueue(self, count: int) -> None:
        for i in range(count):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"i": i}))

    def batch_instances(self) -> list[dict[str, Any]]:
        pages = self.ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{ROLE_TAG_KEY}", "Values": [self.tag]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
        return [i for r in pages["Reservations"] for i in r["Instances"]]

    def fail_run_instances(self, decide: Callable[[dict[str, Any]], str | None]) -> None:
        """Answer RunInstances with EC2 error ``decide(params)`` (None: let moto launch);
        ``params`` are the call's arguments as the launcher passed them."""

        def hook(**_: Any) -> Any:
            code = decide(self.run_calls[-1])
            if code is None:
                return None
            return _Http(400), {"Error": {"Code": code, "Message": f"injected {code}"}}

        self.ec2.meta.events.register("before-call.ec2.RunInstances", hook)


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def _market(params: dict[str, Any]) -> str:
    return "spot" if "InstanceMarketOptions" in params else "on-demand"


@dataclass(frozen=True)
class _Account:
    template_id: str
    subnets: list[str]
    zones: list[str]


@pytest.fixture(scope="module")
def account() -> Iterator[_Account]:
    """One emulated account per module (moto's EC2 start-up costs seconds); each test gets its
    own queue, clients (so its hooks) and batch tag, so tests never see each other's work."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            ec2 = boto3.client("ec2", region_name=REGION)
            subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
            template = ec2.create_launch_template(
                LaunchTemplateName="batch-worker",
                LaunchTemplateData={
                    "ImageId": "ami-12c6146b",  # one of moto's built-in AMIs
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "InstanceInitiatedShutdownBehavior": "terminate",
                    "UserData": "I2Nsb3VkLWNvbmZpZw==",
                },
            )["LaunchTemplate"]["LaunchTemplateId"]
            yield _Account(
                template,
                [s["SubnetId"] for s in subnets],
                [s["AvailabilityZone"] for s in subnets],
            )


@pytest.fixture
def cloud(account: _Account, request: pytest.FixtureRequest) -> Cloud:
    unique = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    sqs = boto3.client("sqs", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"work-{unique}")["QueueUrl"]
    c = Cloud(
        sqs,
        ec2,
        queue_url,
        account.template_id,
        account.subnets,
        account.zones,
        tag=f"batch-{unique}",
    )

    def record(params: dict[str, Any], **_: Any) -> None:
        c.run_calls.append(params)

    ec2.meta.events.register("before-parameter-build.ec2.RunInstances", record)
    return c


# ------------------------------------------------------------------ the decision


def test_empty_queue_launches_nothing(cloud: Cloud) -> None:
    outcome = run_launcher(SCHEDULED, cloud.deps())
    assert outcome.status == "no_messages"
    assert cloud.run_calls == [] and cloud.batch_instances() == []


def test_messages_and_a_running_instance_launch_nothing(cloud: Cloud) -> None:
    cloud.enqueue(3)
    cloud.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": ROLE_TAG_KEY, "Value": cloud.tag}]}
        ],
    )
    cloud.run_calls.clear()
    outcome = run_launcher(SCHEDULED, cloud.deps())
    assert outcome.status == "already_running"
    assert cloud.run_calls == [] and len(cloud.batch_instances()) == 1


def test_an_instance_of_another_tag_does_not_count(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    assert run_launcher(SCHEDULED, cloud.deps()).status == "launched"


def test_messages_and_no_instance_launch_exactly_one_safe_spot_instance(cloud: Cloud) -> None:
    cloud.enqueue(3)
    outcome = run_launcher(SCHEDULED, cloud.deps())

    assert outcome.status == "launched" and outcome.visible_messages == 3
    (instance,) = cloud.batch_instances()
    assert instance["InstanceLifecycle"] == "spot"
    assert instance["InstanceType"] == "g4dn.xlarge"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    behaviour = cloud.ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    user_data = cloud.ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="userData"
    )
    assert user_data["UserData"]["Value"]  # from the launch template
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags[ROLE_TAG_KEY] == cloud.tag and tags["Name"] == cloud.tag
    assert tags["SmartRouterTrigger"] == "schedule"

    (call,) = cloud.run_calls
    assert call["LaunchTemplate"] == {"LaunchTemplateId": cloud.template_id, "Version": "$Latest"}
    assert call["InstanceMarketOptions"]["SpotOptions"]["InstanceInterruptionBehavior"] == (
        "terminate"
    )
    assert call["SubnetId"] == cloud.subnets[0]
    assert call["ClientToken"].startswith("str-") and len(call["ClientToken"]) <= 64
    assert outcome.launched[0].availability_zone == cloud.zones[0]


def test_spot_capacity_error_in_the_first_zone_moves_to_the_next(cloud: Cloud) -> None:
    cloud.enqueue(1)
    first = cloud.subnets[0]
    cloud.fail_run_instances(
        lambda p: "InsufficientInstanceCapacity" if p.get("SubnetId") == first else None
    )
    outcome = run_launcher(SCHEDULED, cloud.deps())

    (instance,) = cloud.batch_instances()
    assert instance["SubnetId"] == cloud.subnets[1]
    assert instance["InstanceLifecycle"] == "spot"
    assert [a.error_code for a in outcome.capacity_errors] == ["InsufficientInstanceCapacity"]
    assert [c["SubnetId"] for c in cloud.run_calls] == cloud.subnets[:2]
    assert cloud.run_calls[0]["ClientToken"] != cloud.run_calls[1]["ClientToken"]


def test_instance_types_are_tried_in_order_before_giving_up(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.fail_run_instances(
        lambda p: "SpotMaxPriceTooLow" if p["InstanceType"] == "g4dn.xlarge" else None
    )
    run_launcher(SCHEDULED, cloud.deps(launch_instance_types=["g4dn.xlarge", "g5.xlarge"]))
    (instance,) = cloud.batch_instances()
    assert instance["InstanceType"] == "g5.xlarge"
    assert [(c["InstanceType"], c["SubnetId"]) for c in cloud.run_calls] == [
        ("g4dn.xlarge", cloud.subnets[0]),
        ("g4dn.xlarge", cloud.subnets[1]),
        ("g5.xlarge", cloud.subnets[0]),
    ]


def test_all_spot_fails_and_fallback_allowed_launches_on_demand(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.fail_run_instances(
        lambda p: "InsufficientInstanceCapacity" if _market(p) == "spot" else None
    )
    outcome = run_launcher(SCHEDULED, cloud.deps(launch_on_demand_fallback=True))

    (instance,) = cloud.batch_instances()
    assert "InstanceLifecycle" not in instance  # on-demand
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert [_market(c) for c in cloud.run_calls] == ["spot", "spot", "on-demand"]
    assert outcome.launched[0].candidate.market == "on-demand"


def test_all_spot_fails_without_fallback_raises_for_a_retry(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.fail_run_instances(lambda p: "InsufficientInstanceCapacity")
    with pytest.raises(NoCapacityError) as caught:
        run_launcher(SCHEDULED, cloud.deps())
    assert len(caught.value.attempts) == 2
    assert all(_market(c) == "spot" for c in cloud.run_calls)
    assert cloud.batch_instances() == []


def test_a_non_capacity_error_is_a_configuration_error(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.fail_run_instances(lambda p: "UnauthorizedOperation")
    with pytest.raises(LaunchConfigError) as caught:
        run_launcher(SCHEDULED, cloud.deps(launch_on_demand_fallback=True))
    assert caught.value.code == "UnauthorizedOperation"
    assert len(cloud.run_calls) == 1  # no point trying other zones


# ------------------------------------------------------------------ idempotency


def test_double_invocation_launches_one_instance(cloud: Cloud) -> None:
    cloud.enqueue(5)
    assert run_launcher(SCHEDULED, cloud.deps()).status == "launched"
    assert run_launcher(SCHEDULED, cloud.deps()).status == "already_running"
    assert run_launcher(MANUAL, cloud.deps()).status == "already_running"
    assert len(cloud.batch_instances()) == 1


def test_racing_invocations_share_client_tokens_so_ec2_starts_one(cloud: Cloud) -> None:
    """Both invocations saw no instance (DescribeInstances before either launch); EC2 answers
    a repeated ClientToken with the first reservation. moto does not emulate that, so the
    hook below does, the way the EC2 API documents it."""
    cloud.enqueue(2)
    reservations: dict[str, dict[str, Any]] = {}

    def describe_nothing(**_: Any) -> Any:
        return _Http(200), {"Reservations": []}

    def idempotent(**_: Any) -> Any:
        token = cloud.run_calls[-1]["ClientToken"]
        return (_Http(200), reservations[token]) if token in reservations else None

    cloud.ec2.meta.events.register("before-call.ec2.DescribeInstances", describe_nothing)
    cloud.ec2.meta.events.register_first("before-call.ec2.RunInstances", idempotent)
    first = run_launcher(SCHEDULED, cloud.deps())
    token = cloud.run_calls[0]["ClientToken"]
    reservations[token] = {"Instances": [{"InstanceId": first.launched[0].instance_id}]}
    second = run_launcher(SCHEDULED, cloud.deps())

    assert cloud.run_calls[1]["ClientToken"] == token
    assert second.launched[0].instance_id == first.launched[0].instance_id
    cloud.ec2.meta.events.unregister("before-call.ec2.DescribeInstances", describe_nothing)
    assert len(cloud.batch_instances()) == 1


def test_client_tokens_follow_the_schedule_time_or_the_manual_window(cloud: Cloud) -> None:
    deps = cloud.deps()
    from batch_worker.launcher import client_token, token_window

    night = token_window(SCHEDULED, deps.settings, NOW)
    retry = token_window(SCHEDULED, deps.settings, datetime(2024, 5, 1, 0, 9, tzinfo=UTC))
    next_night = LaunchRequest("drain", "schedule", scheduled_time=datetime(2024, 5, 2, tzinfo=UTC))
    assert night == retry != token_window(next_night, deps.settings, NOW)
    manual_a = token_window(MANUAL, deps.settings, datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC))
    manual_b = token_window(MANUAL, deps.settings, datetime(2024, 5, 1, 12, 14, tzinfo=UTC))
    manual_c = token_window(MANUAL, deps.settings, datetime(2024, 5, 1, 12, 16, tzinfo=UTC))
    assert manual_a == manual_b != manual_c  # 900 s window
    assert client_token(deps.settings, night, 0, 0) == client_token(deps.settings, night, 0, 0)
    assert client_token(deps.settings, night, 0, 0) != client_token(deps.settings, night, 1, 0)


# ------------------------------------------------------------------ scale-out


@pytest.mark.parametrize(
    ("messages", "max_instances", "expected"),
    [(1, 3, 1), (250, 3, 3), (120, 3, 2), (10_000, 3, 3), (250, 1, 1)],
)
def test_scale_out_by_queue_depth(
    cloud: Cloud, messages: int, max_instances: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "batch_worker.launcher.visible_messages", lambda sqs, url: messages, raising=True
    )
    outcome = run_launcher(
        SCHEDULED, cloud.deps(launch_max_instances=max_instances, launch_messages_per_instance=100)
    )
    assert len(cloud.batch_instances()) == expected == outcome.wanted
    assert len({c["ClientToken"] for c in cloud.run_calls}) == expected


def test_scale_out_tops_up_to_the_wanted_count(cloud: Cloud) -> None:
    cloud.enqueue(25)
    deps = cloud.deps(launch_max_instances=3, launch_messages_per_instance=10)
    assert len(run_launcher(SCHEDULED, deps).launched) == 3
    assert run_launcher(SCHEDULED, deps).status == "already_running"
    assert len(cloud.batch_instances()) == 3


def test_partial_capacity_launches_what_it_can(cloud: Cloud) -> None:
    cloud.enqueue(30)
    launched: list[int] = []

    def second_fails(params: dict[str, Any]) -> str | None:
        if launched:
            return "InsufficientInstanceCapacity"
        launched.append(1)
        return None

    cloud.fail_run_instances(second_fails)
    outcome = run_launcher(
        SCHEDULED, cloud.deps(launch_max_instances=3, launch_messages_per_instance=10)
    )
    assert outcome.status == "partial" and len(outcome.launched) == 1
    assert outcome.shortfall == 2


def test_status_action_reports_without_launching(cloud: Cloud) -> None:
    cloud.enqueue(2)
    outcome = run_launcher(LaunchRequest("status", "manual"), cloud.deps())
    assert (outcome.status, outcome.visible_messages, outcome.wanted) == ("status", 2, 1)
    assert cloud.run_calls == []


# ------------------------------------------------------------------ payloads and settings

# What EventBridge Scheduler sends for template.yaml's LaunchSchedule Input, context attributes
# filled in (values from the Scheduler user guide's examples).
SCHEDULER_PAYLOAD = {
    "action": "drain",
    "trigger": "schedule",
    "scheduled_time": "2022-03-22T18:59:43Z",
    "execution_id": "d32c5kddcf5bb8c3",
    "attempt": "1",
    "schedule_arn": "arn:aws:scheduler:eu-north-1:123456789012:schedule/default/nightly",
}


def test_parse_scheduler_manual_and_rule_payloads() -> None:
    scheduled = parse_request(SCHEDULER_PAYLOAD)
    assert scheduled.trigger == "schedule" and scheduled.execution_id == "d32c5kddcf5bb8c3"
    assert scheduled.scheduled_time == datetime(2022, 3, 22, 18, 59, 43, tzinfo=UTC)
    assert parse_request({"action": "drain"}) == LaunchRequest("drain", "manual")
    rule_event = json.loads(
        (Path(__file__).resolve().parents[1] / "events" / "scheduled_event.json").read_text()
    )
    from_rule = parse_request(rule_event)
    assert from_rule.trigger == "schedule" and from_rule.scheduled_time is not None


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"action": "launch-everything"},
        {"action": "drain", "trigger": "schedule"},
        {"action": "drain", "trigger": "schedule", "scheduled_time": "yesterday"},
        {"action": "drain", "trigger": "cron", "scheduled_time": "2024-05-01T00:00:00Z"},
    ],
)
def test_bad_payloads_are_rejected(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidLaunchEventError):
        parse_request(event)


def test_settings_parse_comma_separated_and_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", "lt-0123456789abcdef0")
    monkeypatch.setenv("LAUNCH_INSTANCE_TYPES", "g4dn.xlarge, g5.xlarge")
    monkeypatch.setenv("LAUNCH_SUBNET_IDS", '["subnet-0123456789abcdef0"]')
    settings = load_settings(LauncherSettings, _env_file=None)
    assert settings.launch_instance_types == ["g4dn.xlarge", "g5.xlarge"]
    assert settings.launch_subnet_ids == ["subnet-0123456789abcdef0"]
    monkeypatch.setenv("LAUNCH_SUBNET_IDS", "")
    assert load_settings(LauncherSettings, _env_file=None).launch_subnet_ids == []
    spot_only = candidates(load_settings(LauncherSettings, _env_file=None))
    assert [(c.instance_type, c.subnet_id) for c in spot_only] == [
        ("g4dn.xlarge", None),
        ("g5.xlarge", None),
    ]


def test_settings_errors_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUEUE_URL", raising=False)
    monkeypatch.delenv("LAUNCH_TEMPLATE_ID", raising=False)
    monkeypatch.setenv("LAUNCH_INSTANCE_TYPES", "a-bad-type")
    with pytest.raises(SettingsError) as caught:
        load_settings(LauncherSettings, _env_file=None)
    text = str(caught.value)
    assert "QUEUE_URL" in text and "LAUNCH_TEMPLATE_ID" in text
    assert "LAUNCH_INSTANCE_TYPES" in text


def test_env_example_loads_for_the_launcher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in LauncherSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = load_settings(LauncherSettings, _env_file=ENV_EXAMPLE)
    assert settings.launch_template_version == "$Latest"
    assert settings.launch_instance_types == ["g4dn.xlarge"]
    assert settings.launch_max_instances == 1


# ------------------------------------------------------------------ the Lambda adapter


class _Context(LambdaContext):
    def __init__(self) -> None:
        self._function_name = "launcher"
        self._function_version = "$LATEST"
        self._invoked_function_arn = "arn:aws:lambda:eu-north-1:123456789012:function:launcher"
        self._memory_limit_in_mb = 256
        self._aws_request_id = "req-1"
        self._log_group_name = "/aws/lambda/launcher"
        self._log_stream_name = "stream"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@pytest.fixture
def handler_deps(cloud: Cloud) -> Iterator[Cloud]:
    launcher_handler.set_deps(cloud.deps())
    yield cloud
    launcher_handler.set_deps(None)


def test_handler_launches_on_the_scheduler_payload(
    handler_deps: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    handler_deps.enqueue(2)
    result = launcher_handler.lambda_handler(dict(SCHEDULER_PAYLOAD), _Context())
    assert result["status"] == "launched" and len(result["launched"]) == 1
    assert json.loads(json.dumps(result)) == result
    output = capsys.readouterr().out
    assert '"InstancesLaunched"' in output  # EMF metrics were flushed


def test_handler_drain_now_is_the_same_decision(handler_deps: Cloud) -> None:
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "no_messages"
    )
    handler_deps.enqueue(1)
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "launched"
    )
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "already_running"
    )


def test_handler_raises_when_there_is_no_capacity(handler_deps: Cloud) -> None:
    handler_deps.enqueue(1)
    handler_deps.fail_run_instances(lambda p: "InsufficientInstanceCapacity")
    with pytest.raises(NoCapacityError):
        launcher_handler.lambda_handler({"action": "drain"}, _Context())


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_handler_without_settings_fails_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LauncherSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    launcher_handler.set_deps(None)
    with pytest.raises(SettingsError, match="LAUNCH_TEMPLATE_ID"):
        launcher_handler.lambda_handler({"action": "drain"}, _Context())
