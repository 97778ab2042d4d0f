"""One source for the names scripts and template share (issue 14): every stack output, template
parameter and tag a script reads exists in template.yaml, and the few names scripts must know
before the stack exists (the role tag key, the tag formulas, the VPC CIDR pattern, the log
retention values) are held equal to the template's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from launcher.launch import ROLE_TAG_KEY
from tests.infra.sam import source, sub_text
from tests.scripts.conftest import ROOT, SCRIPTS

COMMON = (SCRIPTS / "lib" / "common.sh").read_text()


def script_text() -> str:
    return "\n".join(p.read_text() for p in sorted(SCRIPTS.rglob("*.sh")))


def shell_value(name: str) -> str:
    match = re.search(rf"^{name}=(['\"])(.*?)\1$", COMMON, re.M | re.S)
    assert match, name
    return match.group(2)


def outputs_read(text: str) -> set[str]:
    names = set(re.findall(r"stack_output (\w+)", text))
    names |= {pair.split(":")[0] for pair in shell_value("STACK_OUTPUT_SETTINGS").split()}
    return names


def parameter_map() -> dict[str, str]:
    return dict(line.split() for line in shell_value("PARAMETER_MAP").strip().splitlines())


def missing_names(template: dict[str, Any], text: str) -> set[str]:
    """What the scripts read that the template does not define."""
    missing = {f"output {o}" for o in outputs_read(text) - set(template["Outputs"])}
    missing |= {f"parameter {p}" for p in set(parameter_map()) - set(template["Parameters"])}
    missing |= {
        f"parameter {p}"
        for p in re.findall(r"CFN_PARAM_([A-Z]\w+)=", text)
        if p not in template["Parameters"]
    }
    return missing


def test_every_output_and_parameter_a_script_reads_is_in_the_template() -> None:
    assert not missing_names(source(), script_text())


def test_the_check_fails_when_step_320s_output_is_missing() -> None:
    template = source()
    del template["Outputs"]["ServerInstanceProfileName"]
    assert missing_names(template, script_text()) == {"output ServerInstanceProfileName"}


def example_settings() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / ".env.example", SCRIPTS / "lib" / "deploy.env.example"):
        names |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", path.read_text(), re.M))
    return names


def test_parameters_and_recorded_outputs_have_env_settings() -> None:
    settings = example_settings()
    assert set(parameter_map().values()) <= settings
    recorded = {pair.split(":")[1] for pair in shell_value("STACK_OUTPUT_SETTINGS").split()}
    assert recorded <= settings
    # A parameter without a default must be fillable from .env, or step-340 cannot deploy.
    required = {k for k, v in source()["Parameters"].items() if "Default" not in v}
    assert required <= set(parameter_map())


def test_instance_tags_are_one_key_and_the_templates_formulas() -> None:
    key = re.search(r"^ROLE_TAG_KEY=(\w+)$", COMMON, re.M)
    assert key and key.group(1) == ROLE_TAG_KEY
    outputs = source()["Outputs"]
    formulas = re.search(r'INSTANCE_TAGS=\("\$\{batch:-(.+?)\}" "\$\{server:-(.+?)\}"\)', COMMON)
    assert formulas, "stack_instance_tags() changed shape"
    batch, server = (f.replace("${STACK_NAME}", "${AWS::StackName}") for f in formulas.groups())
    assert sub_text(outputs["BatchInstanceTag"]["Value"]) == batch
    assert sub_text(outputs["ServerInstanceTag"]["Value"]) == server
    # The launch template tags batch instances with that key and value.
    data = source()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    (instance_tags,) = (
        t["Tags"] for t in data["TagSpecifications"] if t["ResourceType"] == "instance"
    )
    assert {t["Key"]: sub_text(t["Value"]) for t in instance_tags}[ROLE_TAG_KEY] == batch
    # Scripts find instances by that key only (never by a Name that .env could spell otherwise).
    text = script_text()
    assert "tag:Name" not in text
    assert re.findall(r"tag:(\S+?),Values", text) and all(
        k == "$ROLE_TAG_KEY" for k in re.findall(r"tag:(\S+?),Values", text)
    )


def test_vpc_cidr_pattern_and_log_retention_match_the_template() -> None:
    parameters = source()["Parameters"]
    assert shell_value("VPC_CIDR_PATTERN") == parameters["VpcCidr"]["AllowedPattern"]
    values = [int(v) for v in shell_value("LOG_RETENTION_VALUES").split()]
    assert values == [int(v) for v in parameters["LogRetentionDays"]["AllowedValues"]]


@pytest.mark.parametrize("name", ["ServerUrl", "ServerIngressCidr", "VpcId", "SubnetIds"])
def test_retired_parameters_are_not_passed(name: str) -> None:
    assert name not in parameter_map()
