"""The midnight launcher: start spot GPU instances that drain the work queue (issue 6, P15).

Plain functions over injected boto3 clients; :mod:`launcher.handler` is the Lambda adapter;
:mod:`launcher.request` parses its payloads. One run:

1. read the queue's visible depth (``ApproximateNumberOfMessages``); none → nothing to do;
2. count batch instances that are ``pending`` or ``running`` (tag ``SmartRouterRole`` =
   ``BATCH_INSTANCE_TAG``);
3. want one instance (or, with ``LAUNCH_MAX_INSTANCES`` > 1, one per
   ``LAUNCH_MESSAGES_PER_INSTANCE`` messages up to that many) and launch the difference: with the
   default of 1 a second instance is never started while one is pending or running;
4. each launch tries spot in every instance type x subnet (type-major: the preferred type in any
   AZ before the next type), then, when ``LAUNCH_ON_DEMAND_FALLBACK`` allows, on-demand in the
   same order. Capacity answers (``InsufficientInstanceCapacity``, ``SpotMaxPriceTooLow``, ...)
   move on to the next candidate; any other EC2 error is a misconfiguration and raises.

Idempotency: the tag check covers invocations one after the other; invocations that race (both
see no instance) send the same EC2 ``ClientToken`` for the same (window, slot, candidate), so EC2
starts one instance and answers the other with the same reservation. The window is the schedule's
``scheduled_time`` (Scheduler retries of one night share it) or, for manual invocations, the
``LAUNCH_TOKEN_WINDOW_S`` bucket of the current time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from launcher.errors import (
    InstanceLookupError,
    LaunchConfigError,
    NoCapacityError,
    QueueDepthError,
)
from launcher.request import LaunchRequest
from launcher.settings import LauncherSettings
from transcript_store.errors import QueueReadError
from transcript_store.queue_depth import read_queue_depth

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        RunInstancesRequestTypeDef,
        TagSpecificationTypeDef,
        TagTypeDef,
    )
    from mypy_boto3_sqs import SQSClient

ROLE_TAG_KEY: Final = "SmartRouterRole"
ACTIVE_STATES: Final = ("pending", "running")

# EC2 answers that mean "no room here": try the next type / subnet / market.
CAPACITY_ERRORS: Final = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientFreeAddressesInSubnet",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "Unsupported",
    }
)

Market = Literal["spot", "on-demand"]
Status = Literal["no_messages", "already_running", "launched", "partial", "status"]


@dataclass(frozen=True)
class Candidate:
    market: Market
    instance_type: str
    subnet_id: str | None

    def describe(self) -> str:
        return f"{self.market} {self.instance_type} in {self.subnet_id or 'default subnet'}"


@dataclass(frozen=True)
class LaunchAttempt:
    candidate: Candidate
    error_code: str


@dataclass(frozen=True)
class LaunchedInstance:
    instance_id: str
    candidate: Candidate
    availability_zone: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "market": self.candidate.market,
            "instance_type": self.candidate.instance_type,
            "subnet_id": self.candidate.subnet_id,
            "availability_zone": self.availability_zone,
        }


@dataclass(frozen=True)
class LaunchOutcome:
    status: Status
    visible_messages: int
    active_instances: tuple[str, ...]
    wanted: int
    launched: tuple[LaunchedInstance, ...] = ()
    capacity_errors: tuple[LaunchAttempt, ...] = ()

    @property
    def shortfall(self) -> int:
        return max(0, self.wanted - len(self.active_instances) - len(self.launched))

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "visible_messages": self.visible_messages,
            "active_instances": list(self.active_instances),
            "wanted": self.wanted,
            "launched": [i.to_dict() for i in self.launched],
            "capacity_errors": [
                {"candidate": a.candidate.describe(), "error": a.error_code}
                for a in self.capacity_errors
            ],
            "shortfall": self.shortfall,
        }


@dataclass
class LauncherDeps:
    settings: LauncherSettings
    sqs: SQSClient
    ec2: EC2Client
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


# Every AWS call has explicit timeouts; standard retry mode backs off on throttling.
AWS_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}
)


def build_deps(settings: LauncherSettings) -> LauncherDeps:
    """Real clients (region and endpoint from the standard AWS variables)."""
    return LauncherDeps(
        settings=settings,
        sqs=boto3.client("sqs", config=AWS_CONFIG),
        ec2=boto3.client("ec2", config=AWS_CONFIG),
    )


def visible_messages(sqs: SQSClient, queue_url: str) -> int:
    """Messages waiting for a receive: the work a batch instance would find."""
    try:
        return read_queue_depth(sqs, queue_url).visible
    except QueueReadError as exc:
        raise QueueDepthError(str(exc)) from exc


def active_batch_instances(ec2: EC2Client, tag_value: str) -> tuple[str, ...]:
    """Ids of batch instances that are pending or running (P15)."""
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{ROLE_TAG_KEY}", "Values": [tag_value]},
        {"Name": "instance-state-name", "Values": list(ACTIVE_STATES)},
    ]
    ids: list[str] = []
    try:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                ids.extend(i["InstanceId"] for i in reservation.get("Instances", []))
    except (ClientError, BotoCoreError) as exc:
        raise InstanceLookupError(f"DescribeInstances failed: {exc}") from exc
    return tuple(sorted(ids))


def wanted_instances(visible: int, settings: LauncherSettings) -> int:
    """How many batch instances the queue depth asks for (0 when it is empty)."""
    if visible <= 0:
        return 0
    by_depth = math.ceil(visible / settings.launch_messages_per_instance)
    return max(1, min(settings.launch_max_instances, by_depth))


def candidates(settings: LauncherSettings) -> list[Candidate]:
    """Spot in every type x subnet (type-major), then on-demand in the same order if allowed."""
    subnets: list[str | None] = list(settings.launch_subnet_ids) or [None]
    markets: list[Market] = (
        ["spot", "on-demand"] if settings.launch_on_demand_fallback else ["spot"]
    )
    return [
        Candidate(market, instance_type, subnet)
        for market in markets
        for instance_type in settings.launch_instance_types
        for subnet in subnets
    ]


def token_window(request: LaunchRequest, settings: LauncherSettings, now: datetime) -> str:
    """What invocations that must launch at most once share: the schedule time, else a bucket."""
    if request.scheduled_time is not None:
        return "s" + request.scheduled_time.strftime("%Y%m%dT%H%M%SZ")
    bucket = int(now.timestamp()) // settings.launch_token_window_s
    return f"m{bucket}x{settings.launch_token_window_s}"


def client_token(settings: LauncherSettings, window: str, slot: int, candidate_index: int) -> str:
    """EC2 ClientToken (≤ 64 ASCII): equal for the same template, window, slot and candidate."""
    parts = (
        settings.launch_template_id,
        settings.batch_instance_tag,
        window,
        slot,
        candidate_index,
    )
    material = "|".join(str(part) for part in parts)
    return "str-" + hashlib.sha256(material.encode()).hexdigest()[:48]


def _tags(
    settings: LauncherSettings, request: LaunchRequest, market: Market
) -> list[TagSpecificationTypeDef]:
    tags: list[TagTypeDef] = [
        {"Key": ROLE_TAG_KEY, "Value": settings.batch_instance_tag},
        {"Key": "Name", "Value": settings.batch_instance_tag},
        {"Key": "SmartRouterTrigger", "Value": request.trigger},
        {"Key": "SmartRouterMarket", "Value": market},
    ]
    return [
        {"ResourceType": "instance", "Tags": tags},
        {"ResourceType": "volume", "Tags": tags},
    ]


def run_instance_request(
    settings: LauncherSettings, request: LaunchRequest, candidate: Candidate, token: str
) -> RunInstancesRequestTypeDef:
    """The RunInstances call of one candidate. The launch template holds the image, instance
    profile, security group and user data; the safety settings are repeated here so a template
    edited by hand cannot drop them."""
    params: RunInstancesRequestTypeDef = {
        "LaunchTemplate": {
            "LaunchTemplateId": settings.launch_template_id,
            "Version": settings.launch_template_version,
        },
        "InstanceType": cast("InstanceTypeType", candidate.instance_type),
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": token,
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
        },
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": _tags(settings, request, candidate.market),
    }
    if candidate.subnet_id is not None:
        params["SubnetId"] = candidate.subnet_id
    if candidate.market == "spot":
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        }
    return params


def launch_one(
    deps: LauncherDeps, request: LaunchRequest, window: str, slot: int
) -> tuple[LaunchedInstance | None, list[LaunchAttempt]]:
    """Launch one batch instance: the first candidate with capacity wins. Returns the instance
    (None when every candidate lacked capacity) and the capacity errors met on the way."""
    failures: list[LaunchAttempt] = []
    for index, candidate in enumerate(candidates(deps.settings)):
        token = client_token(deps.settings, window, slot, index)
        params = run_instance_request(deps.settings, request, candidate, token)
        try:
            response = deps.ec2.run_instances(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code in CAPACITY_ERRORS:
                failures.append(LaunchAttempt(candidate, code))
                continue
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise LaunchConfigError(code, message) from exc
        except BotoCoreError as exc:
            raise LaunchConfigError(type(exc).__name__, str(exc)) from exc
        instance = response["Instances"][0]
        zone = instance.get("Placement", {}).get("AvailabilityZone")
        return LaunchedInstance(instance["InstanceId"], candidate, zone), failures
    return None, failures


def run_launcher(request: LaunchRequest, deps: LauncherDeps) -> LaunchOutcome:
    """One launcher invocation (see the module docstring). Raises NoCapacityError when
    instances were wanted and none could be launched."""
    settings = deps.settings
    visible = visible_messages(deps.sqs, settings.queue_url)
    active = active_batch_instances(deps.ec2, settings.batch_instance_tag)
    wanted = wanted_instances(visible, settings)
    if request.action == "status":
        return LaunchOutcome("status", visible, active, wanted)
    if wanted == 0:
        return LaunchOutcome("no_messages", visible, active, wanted)
    missing = wanted - len(active)
    if missing <= 0:
        return LaunchOutcome("already_running", visible, active, wanted)

    window = token_window(request, settings, deps.clock())
    launched: list[LaunchedInstance] = []
    errors: list[LaunchAttempt] = []
    for offset in range(missing):
        # Slots count from the instances already running, so racing invocations that saw the
        # same count use the same tokens for the same slot.
        instance, failures = launch_one(deps, request, window, len(active) + offset)
        errors.extend(failures)
        if instance is None:
            break  # no capacity anywhere: the next slot would meet the same answers
        launched.append(instance)
    if not launched:
        raise NoCapacityError(errors)
    status: Status = "launched" if len(launched) == missing else "partial"
    return LaunchOutcome(status, visible, active, wanted, tuple(launched), tuple(errors))
