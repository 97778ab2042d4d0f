"""Single AWS-API steps against moto's server with the AWS CLI: settings, failures, the bucket
switch. Every step in order, twice, and the teardown: test_rehearsal.py."""

from __future__ import annotations

import pytest

from tests.scripts.conftest import Steps, client, fake_stack_template


def test_000_writes_every_setting_and_is_idempotent(steps: Steps, names: dict[str, str]) -> None:
    values = steps.values()
    example = (steps.env_file.parent / ".env").read_text()
    assert values["BUCKET_NAME"] == names["bucket"]
    assert values["ALLOWED_BUCKETS"] == f'["{names["bucket"]}"]'
    assert values["API_KEY"] == ""  # the key lives in SSM
    assert values["SERVER_URL"] == ""  # the router finds the server by its tag
    assert "STACK_NAME=" in example and "AWS_REGION=eu-north-1" in example
    assert oct(steps.env_file.stat().st_mode & 0o777) == "0o600"
    from tests.scripts.conftest import ROOT

    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split("=", 1)[0] in values
    again = steps.ok("000", "--non-interactive")
    assert "unchanged" in again
    assert again.rstrip().endswith("Next: scripts/step-001-validate-configuration.sh")


def test_000_asks_with_a_terminal_free_stdin(steps: Steps) -> None:
    # Without a terminal nothing is asked; flags win over the current file.
    out = steps.ok("000", "--set", "LANGUAGE=en")
    assert "wrote" in out and steps.values()["LANGUAGE"] == "en"


def test_341_turns_the_bucket_switch_on_and_validates_the_rule(
    steps: Steps, stack: dict[str, str], moto_endpoint: str, names: dict[str, str]
) -> None:
    """moto does not report EventBridgeConfiguration back (a known gap), so the switch is
    proved by its effect: an upload reaches the stack's rule and its queue target. (The whole
    sequence of steps runs in test_rehearsal.py.)"""
    out = steps.ok("341")
    assert "now sends its events to EventBridge" in out and "ENABLED, bucket" in out
    s3 = client(moto_endpoint, "s3")
    s3.put_object(Bucket=names["bucket"], Key="audio/s1/chunk-0.wav", Body=b"x")
    messages = client(moto_endpoint, "sqs").receive_message(
        QueueUrl=stack["EventsQueueUrl"], WaitTimeSeconds=2
    )
    assert "chunk-0.wav" in messages["Messages"][0]["Body"]
    assert "ENABLED, bucket" in steps.ok("341")


def test_001_lists_bad_settings_then_fails(steps: Steps) -> None:
    bad = steps.run("001", extra={"LANGUAGE": "swedish", "VPC_CIDR": "0.0.0.0/0"})
    assert bad.returncode == 1
    assert "LANGUAGE='swedish'" in bad.stderr and "VPC_CIDR='0.0.0.0/0'" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: 2 setting(s)")


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "::/0", "10.0.0.0/8", "10.42.0.0/17", "8.8.0.0/16"])
def test_001_refuses_a_vpc_cidr_wider_than_a_private_slash_16(steps: Steps, cidr: str) -> None:
    """Issue 18 item 12: no CIDR parameter admits anything to the server any more; the one CIDR
    left, the VPC's, is refused here before any deploy unless it is a private /16."""
    bad = steps.run("001", extra={"VPC_CIDR": cidr})
    assert bad.returncode == 1
    assert f"VPC_CIDR='{cidr}' is not a private /16" in bad.stderr


def test_001_warns_about_the_retired_ingress_cidr_and_checks_webhooks(steps: Steps) -> None:
    bad = steps.run(
        "001", extra={"SERVER_ALLOWED_CIDR": "10.0.0.0/16", "WEBHOOK_URL": "https://h.example/x"}
    )
    assert bad.returncode == 1
    assert "SERVER_ALLOWED_CIDR is no longer used" in bad.stderr
    assert "WEBHOOK_SECRET_PARAMETER is empty" in bad.stderr


def test_011_refuses_a_wildcard_action(
    steps: Steps, moto_endpoint: str, names: dict[str, str]
) -> None:
    client(moto_endpoint, "ssm").put_parameter(Name=names["key"], Value="k", Type="SecureString")
    client(moto_endpoint, "cloudformation").create_stack(
        StackName=names["stack"], TemplateBody=fake_stack_template(names["bucket"], "sqs:*")
    )
    result = steps.run("011")
    assert result.returncode == 1
    assert "grants a wildcard action" in result.stderr


def test_021_without_step_020_names_it(steps: Steps) -> None:
    result = steps.run("021")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: QUEUE_URL is not set in .env: run scripts/step-020-create-sqs-resources.sh first."
    )
