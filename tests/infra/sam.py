"""template.yaml as data: parsed (CloudFormation tags as intrinsic dicts) and translated by
aws-sam-translator to plain CloudFormation, the way ``sam deploy`` does before CloudFormation
sees it. Offline: CodeUri is replaced by an S3 URI (``sam package`` does the same) and no
managed policy names need resolving (the template uses inline statements only)."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform  # type: ignore[import-untyped]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "eu-north-1"

Template = dict[str, Any]


class _NoManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader: the template names no managed
    policies, so IAM is never called."""

    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def _source_text() -> str:
    return TEMPLATE.read_text()


def source() -> Template:
    """template.yaml parsed (a fresh copy each call)."""
    parsed: Template = yaml_parse(_source_text())
    return parsed


def translate(template: Template | None = None, **defaults: str) -> Template:
    """The template translated to CloudFormation; ``defaults`` overrides parameter defaults
    (e.g. to include conditional resources in a scan)."""
    doc = copy.deepcopy(template) if template is not None else source()
    for name, value in defaults.items():
        doc["Parameters"][name]["Default"] = value
    for resource in doc["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://sam-artifacts/code.zip"
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        out: Template = transform(doc, {}, _NoManagedPolicies(), passthrough_metadata=True)
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    # Round-trip through JSON: plain dicts and lists, as CloudFormation would read them.
    result: Template = json.loads(json.dumps(out))
    return result


@functools.cache
def _translated_json() -> str:
    return json.dumps(translate())


def translated() -> Template:
    """The default translation (cached; a fresh copy each call)."""
    result: Template = json.loads(_translated_json())
    return result


def resources_of(template: Template, type_: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The statements of a role's inline policies, or of an ``AWS::IAM::Policy`` resource."""
    if "PolicyDocument" in role["Properties"]:
        yield from as_list(role["Properties"]["PolicyDocument"]["Statement"])
        return
    for policy in role["Properties"].get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])


def sub_text(value: Any) -> str:
    """The text of a ``Fn::Sub`` (either form) or a plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    return json.dumps(value, sort_keys=True)


def dead_letter_queues(template: Template) -> set[str]:
    """Every queue something sends its failures to: redrive targets, rule and schedule DLQs,
    Lambda on-failure destinations (logical ids)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key in {"deadLetterTargetArn", "DeadLetterConfig", "OnFailure"}:
                found.update(re.findall(r"'(\w+)', 'Arn'", repr(node)))
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(template["Resources"])
    return found


def queue_alarm(template: Template, queue: str, metric: str) -> dict[str, Any] | None:
    """The alarm on an SQS metric of one queue (its properties), if there is one."""
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        props: dict[str, Any] = alarm["Properties"]
        if (
            props["Namespace"] == "AWS/SQS"
            and props["MetricName"] == metric
            and props.get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        ):
            return props
    return None
