"""The deployment rehearsal (issue 14): every step script in order, 000 -> 342, against moto's
server with the AWS CLI, the stack created by moto's CloudFormation from the SAM-translated
template; then the wiring a new operator depends on is asserted on what moto built (the router's
private path to the server; the server's queue drainer, server_wiring.py); a second pass changes
nothing; step-999 leaves nothing behind.

What runs for real: every AWS CLI call of the steps (moto answers them), the stack (every
resource type moto's CloudFormation supports; the others are listed in UNSUPPORTED_BY_MOTO and
checked on the deployed template here and in tests/infra), the real router handler with the
deployed function's environment. Stand-ins, each honest about itself:
  * sam build / sam deploy: tests/scripts/sam_standin.py (translation, moto CloudFormation; no
    Lambda package is built);
  * docker build / push (312, 313) and the model publish (305, when present): --dry-run; the
    push's result, an image tag in ECR, is put into moto's ECR here;
  * the GPU server (326, 330): a stub on loopback reached with --direct (the default path, SSM
    Run Command on the instance, is only printed: test_dry_run.py);
  * the Lambda runtime (342): moto cannot run the function, so the real handler runs in a
    subprocess with the deployed function's environment, FORCE_QUEUE=true (the server's private
    address is not reachable from here, and tests send nothing off loopback); the launcher's
    real handler likewise, to start a batch instance step-999 must find.
docs/infrastructure.md lists what this does not prove.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.infra.sam import dead_letter_queues, queue_alarm
from tests.scripts.conftest import ROOT, SCRIPTS, Steps, base_env
from tests.scripts.server_wiring import (
    as_list,
    assert_server_drains_the_work_queue,
    role_statements,
)

# moto's Fn::GetAZs answers us-east-1 zones whatever the region (sam_standin.py).
REGION = "us-east-1"

# Resource types of the deployed template that moto's CloudFormation skips (it creates the
# stack without them); tests/infra checks each on the translated template.
UNSUPPORTED_BY_MOTO = {
    "AWS::Budgets::Budget",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Logs::MetricFilter",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Scheduler::Schedule",
}


def client(endpoint: str, service: str) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# ------------------------------------------------------------------ stand-ins


class _StubServer(BaseHTTPRequestHandler):
    """The GPU server's API as steps 326 and 330 see it; the key is the one step-010 stored."""

    key = ""

    def log_message(self, *args: object) -> None:
        return

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(
            200,
            {
                "status": "healthy",
                "model_loaded": True,
                "gpu_available": True,
                "device": "cuda",
                "model": "stub",
            },
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Authorization") != f"Bearer {self.key}":
            self._json(401, {"error": {"code": "unauthorized", "message": "bearer key"}})
            return
        self._json(200, {"transcription": "stub", "segments": []})


@pytest.fixture
def stub_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _sam_standin(directory: Path) -> str:
    wrapper = directory / "sam"
    wrapper.write_text(
        f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests" / "scripts" / "sam_standin.py"} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


_ROUTER = """
import json, os, sys
from router.handler import lambda_handler
from smart_router.local.lambda_runtime import LocalLambdaContext
event = json.loads(sys.stdin.readline())  # imported and waiting before the upload
result = lambda_handler(event, LocalLambdaContext(60, os.environ["AWS_REGION"]))
print(json.dumps(result, default=str))
"""


_LAUNCHER = """
import json, os
from launcher.handler import lambda_handler
from smart_router.local.lambda_runtime import LocalLambdaContext
result = lambda_handler({"action": "drain"}, LocalLambdaContext(60, os.environ["AWS_REGION"]))
print(json.dumps(result, default=str))
"""


def run_launcher(endpoint: str, function_name: str) -> dict[str, Any]:
    """The real launcher handler with the deployed function's environment: "drain now"."""
    config = client(endpoint, "lambda").get_function_configuration(FunctionName=function_name)
    env = {
        **base_env(endpoint),
        # moto keeps numbers as numbers; Lambda's environment is strings.
        **{k: str(v) for k, v in config["Environment"]["Variables"].items()},
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def start_router(endpoint: str, function_arn: str) -> subprocess.Popen[str]:
    """The real router handler with the deployed function's environment (FORCE_QUEUE=true),
    started ahead and waiting for its event on stdin (Lambda's cold start is not under test)."""
    config = client(endpoint, "lambda").get_function_configuration(FunctionName=function_arn)
    env = {
        **base_env(endpoint),
        # moto keeps numbers as numbers; Lambda's environment is strings.
        **{k: str(v) for k, v in config["Environment"]["Variables"].items()},
        "FORCE_QUEUE": "true",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", _ROUTER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def finish_router(process: subprocess.Popen[str], bucket: str, key: str) -> dict[str, Any]:
    stdout, stderr = process.communicate(json.dumps({"bucket": bucket, "key": key}) + "\n", 120)
    assert process.returncode == 0, stdout + stderr
    answer: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return answer


# ------------------------------------------------------------------ the rehearsal


@dataclass
class Rehearsal:
    steps: Steps
    endpoint: str
    names: dict[str, str]
    build_dir: Path
    stub_url: str
    routed: list[dict[str, Any]]

    def plan(self) -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
        """Every numbered step after 000 and before 999, in order, and how it runs here."""
        server = {"SERVER_URL": self.stub_url}
        session = f"rehearsal-{uuid.uuid4().hex[:8]}"
        modes: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
            # Publishing real weights from the hub: printed only.
            "305": (("--dry-run", "--download", "--language", "sv"), {}),
            "312": (("--dry-run",), {}),  # docker build
            "313": (("--dry-run",), {}),  # docker push (its result is put into moto's ECR)
            "326": (("--direct", "--wait", "5"), server),
            "330": (("--direct",), server),
            "342": (("--allow-queued", "--session", session, "--timeout", "60"), {}),
        }
        order = sorted(p.name[5:8] for p in SCRIPTS.glob("step-*.sh"))
        assert order[0] == "000" and order[-1] == "999"
        return [(step, *modes.get(step, ((), {}))) for step in order[1:-1]]

    def run_pass(self) -> dict[str, str]:
        """Runs the plan once; each step's standard output by step number."""
        ran: dict[str, str] = {}
        for step, args, extra in self.plan():
            if step == "320":
                self._pushed_image()
            if step == "326":  # the stub expects the key step-010 stored, as the server would
                parameter = client(self.endpoint, "ssm").get_parameter(
                    Name=self.names["key"], WithDecryption=True
                )
                _StubServer.key = parameter["Parameter"]["Value"]
            if step == "342":
                routing = self._route_the_smoke_chunk()
            ran[step] = self.steps.ok(step, *args, extra=extra)
            if step == "342":  # the step sees the queued message before the router has exited
                routing.join(timeout=60)
        return ran

    def _pushed_image(self) -> None:
        """What step-313's docker push leaves behind: the tag in the repository."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "0" * 64, "size": 1},
                "layers": [],
            }
        )
        ecr = client(self.endpoint, "ecr")
        images = ecr.list_images(repositoryName=self.names["repo"])["imageIds"]
        if not any(i.get("imageTag") == "latest" for i in images):
            ecr.put_image(
                repositoryName=self.names["repo"], imageManifest=manifest, imageTag="latest"
            )

    def _route_the_smoke_chunk(self) -> threading.Thread:
        """Lambda's part in step-342: invoke the router once the chunk is uploaded."""
        values = self.steps.values()
        s3 = client(self.endpoint, "s3")
        before = {
            o["Key"] for o in s3.list_objects_v2(Bucket=self.names["bucket"]).get("Contents", [])
        }

        process = start_router(self.endpoint, values["ROUTER_FUNCTION_ARN"])

        def router() -> None:
            for _ in range(600):
                listing = s3.list_objects_v2(Bucket=self.names["bucket"], Prefix="audio/rehearsal-")
                new = [o["Key"] for o in listing.get("Contents", []) if o["Key"] not in before]
                if new:
                    self.routed.append(finish_router(process, self.names["bucket"], new[0]))
                    return
                time.sleep(0.05)
            process.kill()

        thread = threading.Thread(target=router, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def rehearsal(tmp_path: Path, moto_endpoint: str, fast_aws: str, stub_server: str) -> Rehearsal:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "bucket": f"rehearsal-{suffix}",
        "stack": f"rehearsal-{suffix}",
        "repo": f"rehearsal-{suffix}",
        "key": f"/rehearsal/{suffix}/api-key",
        "webhook": f"/rehearsal/{suffix}/webhook-secret",
    }
    build_dir = tmp_path / "sam-build"
    env = {
        **base_env(moto_endpoint, fast_aws),
        "SAM_CLI": _sam_standin(tmp_path),
        "SAM_BUILD_DIR": str(build_dir),
    }
    steps = Steps(tmp_path / ".env", env)
    # The operator's existing bucket (CREATE_BUCKET=false, the default).
    client(moto_endpoint, "s3").create_bucket(Bucket=names["bucket"])
    ami = client(moto_endpoint, "ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    sets = {
        "AWS_REGION": REGION,
        "BUCKET_NAME": names["bucket"],
        "STACK_NAME": names["stack"],
        "ECR_REPOSITORY": names["repo"],
        "API_KEY_PARAMETER": names["key"],
        "WEBHOOK_SECRET_PARAMETER": names["webhook"],
        "ALARM_EMAIL": "ops@example.com",
        # moto publishes no Deep Learning AMI parameter; one of its own images stands in.
        "SERVER_AMI_ID": ami,
    }
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    steps.ok("000", "--non-interactive", *args)
    return Rehearsal(steps, moto_endpoint, names, build_dir, stub_server, [])


# ------------------------------------------------------------------ what is asserted


def outputs(endpoint: str, stack: str) -> dict[str, str]:
    described = client(endpoint, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def outputs_the_scripts_read() -> set[str]:
    text = "\n".join(p.read_text() for p in [*SCRIPTS.glob("*.sh"), SCRIPTS / "lib" / "common.sh"])
    names = set(re.findall(r"stack_output (\w+)", text))
    block = re.search(r'STACK_OUTPUT_SETTINGS="([^"]*)"', text)
    assert block
    names |= {pair.split(":")[0] for pair in block.group(1).split()}
    return names


def assert_router_reaches_the_server_privately(
    endpoint: str, out: dict[str, str], values: dict[str, str]
) -> None:
    ec2 = client(endpoint, "ec2")
    function = client(endpoint, "lambda").get_function_configuration(
        FunctionName=out["RouterFunctionArn"]
    )
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[out["ServerNetworkInterfaceId"]])[
        "NetworkInterfaces"
    ][0]
    private_ip = eni["PrivateIpAddress"]
    server_url = function["Environment"]["Variables"]["SERVER_URL"]
    assert server_url == f"http://{private_ip}:8000" == out["ServerUrl"] == values["SERVER_URL"]
    assert ipaddress.ip_address(urlsplit(server_url).hostname or "").is_private
    assert "Association" not in eni  # no public or Elastic IP on the interface
    # step-320 launched the server on that interface: its address is the router's SERVER_URL.
    (reservation,) = ec2.describe_instances(InstanceIds=[values["SERVER_INSTANCE_ID"]])[
        "Reservations"
    ]
    (instance,) = reservation["Instances"]
    assert instance["PrivateIpAddress"] == private_ip
    assert [n["NetworkInterfaceId"] for n in instance["NetworkInterfaces"]] == [
        eni["NetworkInterfaceId"]
    ]
    assert not instance.get("PublicIpAddress")
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["SmartRouterRole"] == out["ServerInstanceTag"]
    # The server's port admits the router's security group, and nothing wider.
    (group,) = ec2.describe_security_groups(GroupIds=[out["ServerSecurityGroupId"]])[
        "SecurityGroups"
    ]
    (rule,) = group["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 8000, 8000)
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [out["RouterSecurityGroupId"]]
    assert not rule["IpRanges"] and not rule["Ipv6Ranges"] and not rule["PrefixListIds"]
    vpc_config = function["VpcConfig"]
    assert vpc_config["SecurityGroupIds"] == [out["RouterSecurityGroupId"]]
    assert sorted(vpc_config["SubnetIds"]) == sorted(out["PrivateSubnetIds"].split(","))
    assert eni["SubnetId"] in vpc_config["SubnetIds"]


def router_services(endpoint: str, stack: str) -> set[str]:
    cloudformation = client(endpoint, "cloudformation")
    (role,) = (
        r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        if r["LogicalResourceId"] == "RouterFunctionRole"
    )
    statements = role_statements(client(endpoint, "iam"), role)
    return {a.split(":")[0] for s in statements for a in as_list(s["Action"])}


def assert_router_subnets_reach_its_services(
    rehearsal: Rehearsal, out: dict[str, str], subnets: list[str]
) -> None:
    endpoint, stack = rehearsal.endpoint, rehearsal.names["stack"]
    ec2 = client(endpoint, "ec2")
    services = router_services(endpoint, stack)
    assert {"s3", "sqs", "dynamodb", "ssm", "events"} <= services
    # moto keeps the subnet associations CloudFormation creates apart from the route tables it
    # describes, so each subnet's table is read from the deployed template's association (by
    # logical id) and everything else (routes, endpoints, the NAT) from moto.
    deployed = json.loads((rehearsal.build_dir / "template.yaml").read_text())
    summaries = client(endpoint, "cloudformation").list_stack_resources(StackName=stack)[
        "StackResourceSummaries"
    ]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
    logical = {v: k for k, v in physical.items()}
    association = {
        r["Properties"]["SubnetId"]["Ref"]: r["Properties"]["RouteTableId"]["Ref"]
        for r in deployed["Resources"].values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
    }

    def route_table(subnet: str) -> dict[str, Any]:
        table_id = physical[association[logical[subnet]]]
        (table,) = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
        return dict(table)

    def default_route(table: dict[str, Any]) -> dict[str, Any]:
        (route,) = (r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
        return dict(route)

    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])
    assert sorted(subnets) == sorted(out["PrivateSubnetIds"].split(","))
    for subnet in subnets:
        table = route_table(subnet)
        gateways = {
            e["ServiceName"].rsplit(".", 1)[-1]
            for e in endpoints["VpcEndpoints"]
            if e["VpcEndpointType"] == "Gateway" and table["RouteTableId"] in e["RouteTableIds"]
        }
        # S3 and DynamoDB through the gateway endpoints; the rest (SQS, SSM, EventBridge, and
        # webhooks) through the NAT gateway, which sits in a subnet routed to the internet.
        assert {"s3", "dynamodb"} <= gateways
        (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[default_route(table)["NatGatewayId"]])[
            "NatGateways"
        ]
        assert nat["State"] == "available"
        assert default_route(route_table(nat["SubnetId"]))["GatewayId"].startswith("igw-")
        # The private subnet itself has no internet gateway route: nothing comes in.
        assert not any(str(r.get("GatewayId", "")).startswith("igw-") for r in table["Routes"])


def assert_an_alarm_for_each_dead_letter_queue(
    build_dir: Path, endpoint: str, out: dict[str, str]
) -> None:
    deployed = json.loads((build_dir / "template.yaml").read_text())
    queues = dead_letter_queues(deployed)
    assert len(queues) == 4
    for queue in queues:
        assert queue_alarm(deployed, queue, "ApproximateNumberOfMessagesVisible"), queue
    # The queues the alarms name exist in the stack moto built.
    urls = {
        out[k]
        for k in (
            "DeadLetterQueueUrl",
            "RouterDeadLetterQueueUrl",
            "RouterEventsDeadLetterQueueUrl",
            "LauncherDeadLetterQueueUrl",
        )
    }
    sqs = client(endpoint, "sqs")
    for url in urls:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    from moto.cloudformation.parsing import get_model_map

    skipped = {r["Type"] for r in deployed["Resources"].values()} - set(get_model_map())
    assert skipped <= UNSUPPORTED_BY_MOTO
    docs = (ROOT / "docs" / "infrastructure.md").read_text()
    for kind in UNSUPPORTED_BY_MOTO:
        assert f"`{kind}`" in docs, kind


def snapshot(rehearsal: Rehearsal) -> dict[str, Any]:
    """What a second pass must leave as it was (queue depths and smoke objects excepted)."""
    e, n = rehearsal.endpoint, rehearsal.names
    cloudformation = client(e, "cloudformation")
    stack = cloudformation.describe_stacks(StackName=n["stack"])["Stacks"][0]
    resources = cloudformation.list_stack_resources(StackName=n["stack"])["StackResourceSummaries"]
    ec2 = client(e, "ec2")
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag-key", "Values": ["SmartRouterRole"]}]
    )["Reservations"]
    ssm = client(e, "ssm")
    ecr = client(e, "ecr")
    return {
        "env": rehearsal.steps.env_file.read_text(),
        "stack": (stack["StackStatus"], str(stack.get("LastUpdatedTime")), stack.get("Outputs")),
        "resources": sorted((r["LogicalResourceId"], r["PhysicalResourceId"]) for r in resources),
        "instances": sorted(
            (i["InstanceId"], i["State"]["Name"]) for r in reservations for i in r["Instances"]
        ),
        "parameters": {
            p["Name"]: p["Version"]
            for p in ssm.get_parameters(Names=[n["key"], n["webhook"]])["Parameters"]
        },
        "repository": ecr.describe_repositories(repositoryNames=[n["repo"]])["repositories"],
        "lifecycle": ecr.get_lifecycle_policy(repositoryName=n["repo"])["lifecyclePolicyText"],
        "queues": sorted(client(e, "sqs").list_queues(QueueNamePrefix=n["stack"])["QueueUrls"]),
    }


def assert_nothing_left(rehearsal: Rehearsal, out: dict[str, str]) -> None:
    e, n = rehearsal.endpoint, rehearsal.names
    stacks = client(e, "cloudformation").list_stacks()["StackSummaries"]
    assert all(
        s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == n["stack"]
    )
    ec2 = client(e, "ec2")
    for tag in (out["ServerInstanceTag"], out["BatchInstanceTag"]):
        live = ec2.describe_instances(
            Filters=[
                {"Name": "tag:SmartRouterRole", "Values": [tag]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        )["Reservations"]
        assert not live, tag
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])["Vpcs"]
    assert not ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": [out["ServerNetworkInterfaceId"]]}]
    )["NetworkInterfaces"]
    assert not client(e, "ssm").get_parameters(Names=[n["key"], n["webhook"]])["Parameters"]
    assert n["repo"] not in str(client(e, "ecr").describe_repositories()["repositories"])
    assert not client(e, "sqs").list_queues(QueueNamePrefix=n["stack"]).get("QueueUrls")
    functions = client(e, "lambda").list_functions()["Functions"]
    assert not [f for f in functions if f["FunctionName"].startswith(n["stack"])]
    client(e, "s3").head_bucket(Bucket=n["bucket"])  # the operator's bucket is kept
    assert all(
        v == ""
        for k, v in rehearsal.steps.values().items()
        if k in {"QUEUE_URL", "SERVER_URL", "SERVER_INSTANCE_ID", "ROUTER_FUNCTION_ARN"}
    )


@pytest.mark.slow
def test_every_step_in_order_against_moto(rehearsal: Rehearsal) -> None:
    started = time.monotonic()
    ran = rehearsal.run_pass()
    assert list(ran)[:4] == ["001", "010", "011", "020"] and list(ran)[-1] == "342"
    assert "server key: stored as SSM SecureString" in ran["010"]
    assert "webhook signing key: stored as SSM SecureString" in ran["010"]
    assert (
        "5 IAM role(s) present, no wildcard actions" in ran["011"] or "not deployed" in ran["011"]
    )
    assert "transcript written" not in ran["342"] and "queued the chunk" in ran["342"]
    ssm = client(rehearsal.endpoint, "ssm")
    key = ssm.get_parameter(Name=rehearsal.names["key"], WithDecryption=True)["Parameter"]
    assert key["Type"] == "SecureString" and len(key["Value"]) == 64
    ecr = client(rehearsal.endpoint, "ecr")
    (repository,) = ecr.describe_repositories(repositoryNames=[rehearsal.names["repo"]])[
        "repositories"
    ]
    assert repository["imageScanningConfiguration"]["scanOnPush"] is True
    values = rehearsal.steps.values()
    assert values["ECR_REPOSITORY_URI"] == repository["repositoryUri"]
    out = outputs(rehearsal.endpoint, rehearsal.names["stack"])
    # Every output a script reads exists in the deployed stack (ServerInstanceProfileName too).
    assert outputs_the_scripts_read() <= set(out)
    assert_router_reaches_the_server_privately(rehearsal.endpoint, out, values)
    # The server drains the stack's work queue as soon as it is up (issue 15).
    ec2, iam, sqs = (client(rehearsal.endpoint, s) for s in ("ec2", "iam", "sqs"))
    assert_server_drains_the_work_queue(ec2, iam, sqs, out, values)
    function = client(rehearsal.endpoint, "lambda").get_function_configuration(
        FunctionName=out["RouterFunctionArn"]
    )
    assert_router_subnets_reach_its_services(rehearsal, out, function["VpcConfig"]["SubnetIds"])
    assert_an_alarm_for_each_dead_letter_queue(rehearsal.build_dir, rehearsal.endpoint, out)
    # The smoke chunk went through the real router handler into the stack's work queue.
    (routed,) = rehearsal.routed
    assert routed["status"] == "queued" and routed["message_id"], routed
    assert values["BATCH_INSTANCE_TAG"] == out["BatchInstanceTag"]

    before = snapshot(rehearsal)
    again = rehearsal.run_pass()
    assert snapshot(rehearsal) == before
    assert len(rehearsal.routed) == 2
    assert "exists (kept" in again["010"] and "5 IAM role(s) present" in again["011"]
    assert "queues already deployed" in again["020"] and "recorded" not in again["020"]
    failed = rehearsal.steps.run("342", "--session", "rehearsal-never", "--timeout", "0")
    assert failed.returncode == 1 and "no transcript for" in failed.stderr

    # The launcher (its real handler, the deployed environment) starts a batch instance for the
    # queued chunks: step-999 must find it as well as the server.
    launched = run_launcher(rehearsal.endpoint, out["LauncherFunctionName"])
    assert launched["status"] == "launched", launched
    (batch,) = launched["launched"]
    assert batch["subnet_id"] in out["PrivateSubnetIds"].split(",")
    ec2 = client(rehearsal.endpoint, "ec2")
    (reservation,) = ec2.describe_instances(InstanceIds=[batch["instance_id"]])["Reservations"]
    tags = {t["Key"]: t["Value"] for t in reservation["Instances"][0]["Tags"]}
    assert tags["SmartRouterRole"] == out["BatchInstanceTag"]

    refused = rehearsal.steps.run("999")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    rehearsal.steps.ok("999", "--yes")
    assert_nothing_left(rehearsal, out)
    (reservation,) = ec2.describe_instances(InstanceIds=[batch["instance_id"]])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == "terminated"
    assert "already gone" in rehearsal.steps.ok("999", "--yes")
    print(f"rehearsal: {time.monotonic() - started:.1f} s")
