"""A stand-in for the SAM CLI in the deployment rehearsal (SAM_CLI, scripts/lib/common.sh).

``build`` translates template.yaml with aws-sam-translator (what ``sam deploy`` hands to
CloudFormation; tests/infra/sam.py) into ``--build-dir``/template.yaml. It builds no Lambda
package: CodeUri becomes an S3 object holding an empty zip.

``deploy`` creates the stack in moto's CloudFormation (AWS_ENDPOINT_URL) with the parameter
overrides and tags it is given, or updates it; when the template and parameters are those of
the deployed stack it changes nothing and succeeds, like ``sam deploy
--no-fail-on-empty-changeset``. ``--resolve-s3``: the artifact bucket is created here.

Two moto adjustments, both stated in docs/infrastructure.md: moto resolves an SSM-typed
parameter's *default* even when a value is passed and publishes no Deep Learning AMI
parameter, so WorkerAmiId's default becomes an Amazon Linux parameter moto does publish; and
moto's Fn::GetAZs answers us-east-1 zones whatever the region, so the rehearsal runs in
us-east-1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_BUCKET = "sam-artifacts"
ARTIFACT_KEY = "code.zip"
MOTO_WORKER_AMI = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _options(args: list[str], name: str) -> list[str]:
    """The words after ``name`` up to the next ``--option``."""
    if name not in args:
        return []
    rest = args[args.index(name) + 1 :]
    words = []
    for word in rest:
        if word.startswith("--"):
            break
        words.append(word)
    return words


def _client(service: str, region: str) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(service, region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def build(args: list[str]) -> int:
    source = Path(_option(args, "--template-file"))
    out = Path(_option(args, "--build-dir"))
    out.mkdir(parents=True, exist_ok=True)
    # Like sam build's cache: the same template.yaml is not translated twice.
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    stamp = out / "source.sha256"
    if not (stamp.exists() and stamp.read_text() == digest):
        sys.path.insert(0, str(ROOT))
        from tests.infra.sam import translate

        template = translate(WorkerAmiId=MOTO_WORKER_AMI)
        (out / "template.yaml").write_text(json.dumps(template, indent=1, sort_keys=True))
        stamp.write_text(digest)
    print(f"stand-in for sam build: translated {source}, no package built")
    return 0


def _empty_zip() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("README", "sam_standin: no package built\n")
    return data.getvalue()


def _wait(cloudformation: Any, stack: str) -> str:
    for _ in range(600):
        status = str(cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(0.1)
    raise TimeoutError(stack)


def deploy(args: list[str]) -> int:
    from botocore.exceptions import ClientError

    region = _option(args, "--region")
    stack = _option(args, "--stack-name")
    body = Path(_option(args, "--template-file")).read_text()
    parameters = [
        {"ParameterKey": k, "ParameterValue": v}
        for k, v in (word.split("=", 1) for word in _options(args, "--parameter-overrides"))
    ]
    tags = [
        {"Key": k, "Value": v} for k, v in (word.split("=", 1) for word in _options(args, "--tags"))
    ]
    s3 = _client("s3", region)
    try:
        s3.head_bucket(Bucket=ARTIFACT_BUCKET)
    except ClientError:
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=ARTIFACT_KEY, Body=_empty_zip())
    cloudformation = _client("cloudformation", region)
    capabilities = _options(args, "--capabilities")
    try:
        current = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        current = None
    if current is None:
        cloudformation.create_stack(
            StackName=stack,
            TemplateBody=body,
            Parameters=parameters,
            Capabilities=capabilities,
            Tags=tags,
        )
        verb = "created"
    else:
        deployed = cloudformation.get_template(StackName=stack)["TemplateBody"]
        same_template = json.loads(body) == (
            deployed if isinstance(deployed, dict) else json.loads(deployed)
        )
        passed = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
        actual = {p["ParameterKey"]: p["ParameterValue"] for p in current.get("Parameters", [])}
        if same_template and all(actual.get(k) == v for k, v in passed.items()):
            print(f"No changes to deploy. Stack {stack} is up to date")
            return 0
        cloudformation.update_stack(
            StackName=stack,
            TemplateBody=body,
            Parameters=parameters,
            Capabilities=capabilities,
            Tags=tags,
        )
        verb = "updated"
    status = _wait(cloudformation, stack)
    if status not in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}:
        print(f"Error: stack {stack} is {status}", file=sys.stderr)
        return 1
    print(f"Successfully {verb} stack - {stack} in {region} (stand-in for sam deploy)")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"build", "deploy"}:
        print(f"sam_standin: unsupported command {argv[:1]}", file=sys.stderr)
        return 2
    return build(argv[1:]) if argv[0] == "build" else deploy(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
