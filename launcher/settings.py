"""The midnight launcher Lambda's settings, with the EC2 rules they are checked by (instance
types, subnets, launch template); built on the shared base of
:mod:`transcript_contracts.settings`."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from transcript_contracts.settings import SettingsBase

_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")


def _word_list(value: Any) -> Any:
    """A list setting from the environment: a JSON list or comma-separated words ("" is [])."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class LauncherSettings(SettingsBase):
    """The midnight launcher Lambda: starts spot GPU instances that run the batch worker."""

    queue_url: str = Field(description="URL of the SQS work queue whose depth decides a launch.")
    launch_template_id: str = Field(
        pattern=r"^lt-[0-9a-f]{8,17}$",
        description="EC2 launch template id of the batch worker (template: WorkerLaunchTemplate).",
    )
    launch_template_version: str = Field(
        "$Latest",
        pattern=r"^(\$Latest|\$Default|[0-9]{1,9})$",
        description="Launch template version: $Latest, $Default or a number.",
    )
    launch_instance_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["g4dn.xlarge"],
        min_length=1,
        description="Instance types to try in order, comma-separated (spot first, then on-demand).",
    )
    launch_subnet_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Subnets (one per AZ) to try in order, comma-separated; empty lets EC2 pick the "
            "default subnet."
        ),
    )
    launch_on_demand_fallback: bool = Field(
        False,
        description="When no spot capacity is found anywhere, launch on-demand instead.",
    )
    launch_max_instances: int = Field(
        1,
        ge=1,
        le=20,
        description="Most batch instances at once; above 1 the launcher scales by queue depth.",
    )
    launch_messages_per_instance: int = Field(
        500,
        ge=1,
        description="Queue depth per instance when LAUNCH_MAX_INSTANCES is above 1.",
    )
    batch_instance_tag: str = Field(
        "transcription-batch-worker",
        pattern=r"^[A-Za-z0-9 _.:/=+@-]{1,255}$",
        description=(
            "Value of the SmartRouterRole tag (and Name) of batch instances: how the launcher "
            "finds running ones and what the instance role may terminate."
        ),
    )
    launch_token_window_s: int = Field(
        900,
        ge=60,
        le=86_400,
        description=(
            "Manual launches in the same window of this many seconds share EC2 ClientTokens, "
            "so a double invocation starts one instance (scheduled ones use the schedule time)."
        ),
    )

    @field_validator("launch_instance_types", "launch_subnet_ids", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        return _word_list(value)

    @field_validator("launch_instance_types")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _INSTANCE_TYPE_RE.match(v)]
        if bad:
            raise ValueError(f"not EC2 instance types: {bad}")
        return value

    @field_validator("launch_subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _SUBNET_RE.match(v)]
        if bad:
            raise ValueError(f"not subnet ids: {bad}")
        return value
