"""The AWS-API steps against moto's server with the AWS CLI: resources exist after the first run
and a second run changes nothing."""

from __future__ import annotations

import threading
import time

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


def test_the_sequence_against_moto(
    steps: Steps, stack: dict[str, str], moto_endpoint: str, names: dict[str, str]
) -> None:
    """001 -> 010 -> 011 -> 020 -> 021 -> 301 -> 302 -> 341 -> 342 -> 999, each AWS step run
    twice where a second run must change nothing (one sequence: every CLI call costs ~0.5 s)."""
    ssm = client(moto_endpoint, "ssm")
    out = steps.ok("001")
    assert "settings: ok" in out and "reachable" in out and "123456789012" in out

    # 010/011: the key as a SecureString, kept on a second run; the stack's role checked.
    assert "stored as SSM SecureString" in steps.ok("010")
    parameter = ssm.get_parameter(Name=names["key"], WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and len(parameter["Value"]) == 64
    assert "exists (kept" in steps.ok("010")
    assert ssm.get_parameter(Name=names["key"], WithDecryption=True)["Parameter"] == parameter
    assert "1 IAM role(s) present, no wildcard actions" in steps.ok("011")

    # 020/021: the stack's queues recorded, not copied; a second run leaves .env as it was.
    out = steps.ok("020")
    assert "queues already deployed" in out and "recorded QUEUE_URL" in out
    values = steps.values()
    assert values["QUEUE_URL"] == stack["QueueUrl"]
    assert values["DLQ_URL"] == stack["DeadLetterQueueUrl"]
    assert values["ROUTER_FUNCTION_ARN"] == stack["RouterFunctionArn"]
    before = steps.env_file.read_text()
    assert "recorded" not in steps.ok("020")
    assert steps.env_file.read_text() == before
    queues = client(moto_endpoint, "sqs").list_queues(QueueNamePrefix=names["stack"])
    assert len(queues["QueueUrls"]) == 3  # the stack's own: no second copy
    out = steps.ok("021")
    assert "DLQ after 3 receives" in out and "retention 1209600s" in out

    # 301/302: the repository.
    assert "created" in steps.ok("301")
    ecr = client(moto_endpoint, "ecr")
    repo = ecr.describe_repositories(repositoryNames=[names["repo"]])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert ecr.get_lifecycle_policy(repositoryName=names["repo"])["lifecyclePolicyText"]
    assert steps.values()["ECR_REPOSITORY_URI"] == repo["repositoryUri"]
    again = steps.ok("301")
    assert "exists" in again and "created" not in again and "recorded" not in again
    out = steps.ok("302")
    assert "scan on push" in out and "registry login: ok" in out

    # 341: moto does not report EventBridgeConfiguration back (a known gap), so the switch is
    # proved by its effect: an upload reaches the stack's rule and its queue target.
    out = steps.ok("341")
    assert "now sends its events to EventBridge" in out and "ENABLED, bucket" in out
    s3 = client(moto_endpoint, "s3")
    bucket = names["bucket"]
    s3.put_object(Bucket=bucket, Key="audio/s1/chunk-0.wav", Body=b"x")
    messages = client(moto_endpoint, "sqs").receive_message(
        QueueUrl=stack["EventsQueueUrl"], WaitTimeSeconds=2
    )
    assert "chunk-0.wav" in messages["Messages"][0]["Body"]
    assert "ENABLED, bucket" in steps.ok("341")

    # 342: a stand-in router writes the transcript once the chunk is there.
    def fake_router() -> None:
        for _ in range(150):
            if s3.list_objects_v2(Bucket=bucket, Prefix="audio/smoke-test/").get("KeyCount"):
                s3.put_object(
                    Bucket=bucket, Key="transcripts/smoke-test/chunk-0000.json", Body=b"{}"
                )
                return
            time.sleep(0.2)

    thread = threading.Thread(target=fake_router)
    thread.start()
    out = steps.ok("342", "--session", "smoke-test", "--timeout", "30")
    thread.join()
    assert "transcript written" in out
    failed = steps.run("342", "--session", "smoke-never", "--timeout", "0")
    assert failed.returncode == 1 and "no transcript for" in failed.stderr

    # 999: asks first; removes stack, repository and key, keeps the bucket; runs again.
    refused = steps.run("999")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "teardown complete" in steps.ok("999", "--yes")
    assert names["repo"] not in str(ecr.describe_repositories()["repositories"])
    assert not ssm.get_parameters(Names=[names["key"]])["Parameters"]
    stacks = client(moto_endpoint, "cloudformation").list_stacks()["StackSummaries"]
    assert all(
        s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == names["stack"]
    )
    s3.head_bucket(Bucket=bucket)
    assert steps.values()["QUEUE_URL"] == ""
    assert "already gone" in steps.ok("999", "--yes")


def test_001_lists_bad_settings_then_fails(steps: Steps) -> None:
    bad = steps.run("001", extra={"LANGUAGE": "swedish", "SERVER_ALLOWED_CIDR": "0.0.0.0/0"})
    assert bad.returncode == 1
    assert "LANGUAGE='swedish'" in bad.stderr and "0.0.0.0/0" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: 2 setting(s)")


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
