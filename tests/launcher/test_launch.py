"""The midnight launcher's decision against moto's SQS and EC2 (issue 6, P15): when to launch,
where, on which market, at most once, and how many."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from launcher.errors import LaunchConfigError, NoCapacityError
from launcher.launch import ROLE_TAG_KEY, client_token, run_launcher, token_window
from launcher.request import LaunchRequest
from tests.launcher.conftest import MANUAL, NOW, SCHEDULED, Cloud, Http, market

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
        lambda p: "InsufficientInstanceCapacity" if market(p) == "spot" else None
    )
    outcome = run_launcher(SCHEDULED, cloud.deps(launch_on_demand_fallback=True))

    (instance,) = cloud.batch_instances()
    assert "InstanceLifecycle" not in instance  # on-demand
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert [market(c) for c in cloud.run_calls] == ["spot", "spot", "on-demand"]
    assert outcome.launched[0].candidate.market == "on-demand"


def test_all_spot_fails_without_fallback_raises_for_a_retry(cloud: Cloud) -> None:
    cloud.enqueue(1)
    cloud.fail_run_instances(lambda p: "InsufficientInstanceCapacity")
    with pytest.raises(NoCapacityError) as caught:
        run_launcher(SCHEDULED, cloud.deps())
    assert len(caught.value.attempts) == 2
    assert all(market(c) == "spot" for c in cloud.run_calls)
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
        return Http(200), {"Reservations": []}

    def idempotent(**_: Any) -> Any:
        token = cloud.run_calls[-1]["ClientToken"]
        return (Http(200), reservations[token]) if token in reservations else None

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
    monkeypatch.setattr("launcher.launch.visible_messages", lambda sqs, url: messages, raising=True)
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
