"""Invariants of the template once aws-sam-translator has turned it into CloudFormation
(issues 7 and 14; docs/design.md P4, P7, P13-P16, P19). The network, alarm and webhook
invariants are in test_network.py and test_alarms.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from batch_worker.settings import WorkerSettings
from launcher.launch import ROLE_TAG_KEY
from launcher.request import parse_request
from launcher.settings import LauncherSettings
from router.settings import RouterSettings
from tests.infra.sam import (
    Template,
    as_list,
    policy_statements,
    resources_of,
    source,
    sub_text,
    translate,
    translated,
)


@pytest.fixture(scope="module")
def cfn() -> Template:
    return translated()


def resource(cfn: Template, logical_id: str) -> dict[str, Any]:
    return dict(cfn["Resources"][logical_id])


def getatt_arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def default(cfn: Template, parameter: str) -> Any:
    return cfn["Parameters"][parameter].get("Default")


def actions(statement: dict[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement["Action"])]


def roles(cfn: Template) -> dict[str, Any]:
    """Every role, and every standalone policy (checked by the same rules)."""
    return {**resources_of(cfn, "AWS::IAM::Role"), **resources_of(cfn, "AWS::IAM::Policy")}


def batch_tag() -> str:
    return "${AWS::StackName}-batch-worker"


# ------------------------------------------------------------------ router


def test_router_rule_matches_object_created_under_the_audio_prefix(cfn: Template) -> None:
    rule = resource(cfn, "RouterFunctionAudioObjectCreated")["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "BucketName"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": {"Ref": "AudioPrefix"}}]
    (target,) = rule["Targets"]
    assert target["Arn"] == getatt_arn("RouterFunction")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == getatt_arn("RouterEventsDeadLetterQueue")


def test_rule_dead_letter_queue_accepts_only_that_rule(cfn: Template) -> None:
    policy = resource(cfn, "RouterEventsDeadLetterQueuePolicy")["Properties"]
    (statement,) = as_list(policy["PolicyDocument"]["Statement"])
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert actions(statement) == ["sqs:SendMessage"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == getatt_arn(
        "RouterFunctionAudioObjectCreated"
    )


@pytest.mark.parametrize("function", ["RouterFunction", "LauncherFunction"])
def test_async_invocations_retry_at_most_twice_then_go_to_a_queue(
    cfn: Template, function: str
) -> None:
    (config,) = (
        c["Properties"]
        for c in resources_of(cfn, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function}
    )
    assert config["MaximumRetryAttempts"] <= 2
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = destination["Fn::GetAtt"][0]
    assert cfn["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"


def test_router_concurrency_is_a_parameter(cfn: Template) -> None:
    props = resource(cfn, "RouterFunction")["Properties"]
    assert props["ReservedConcurrentExecutions"] == {"Ref": "RouterReservedConcurrency"}
    assert cfn["Parameters"]["RouterReservedConcurrency"]["Type"] == "Number"


def test_router_timeout_covers_its_retry_budget(cfn: Template) -> None:
    fields = RouterSettings.model_fields
    health = fields["health_timeout_s"].default
    attempt = fields["connect_timeout_s"].default + fields["read_timeout_s"].default
    waits = 1 + 2 + 4  # router/server_client.py: waits 1, 2, 4 s between 4 attempts
    budget = health + 4 * attempt + waits + fields["queue_send_reserve_s"].default
    timeout = resource(cfn, "RouterFunction")["Properties"]["Timeout"]
    assert budget <= timeout <= 900


@pytest.mark.parametrize(
    ("function", "settings", "extra"),
    [
        ("RouterFunction", RouterSettings, set()),
        ("LauncherFunction", LauncherSettings, set()),
    ],
)
def test_function_environment_names_real_settings(
    cfn: Template, function: str, settings: type[Any], extra: set[str]
) -> None:
    env = resource(cfn, function)["Properties"]["Environment"]["Variables"]
    ours = {k for k in env if not k.startswith("POWERTOOLS_")}
    assert ours <= {name.upper() for name in settings.model_fields} | extra
    assert "API_KEY" not in env  # only the SSM parameter's name (P16)


def test_webhooks_are_wired_for_router_and_worker(cfn: Template) -> None:
    env = resource(cfn, "RouterFunction")["Properties"]["Environment"]["Variables"]
    assert env["WEBHOOK_URL"] == {"Ref": "WebhookUrl"}
    assert env["WEBHOOK_SECRET_PARAMETER"] == {"Ref": "WebhookSecretParameterName"}
    assert "WEBHOOK_SECRET" not in env  # the key's name only, never the key
    worker_env = sub_text(
        resource(cfn, "WorkerLaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"][
            "Fn::Base64"
        ]
    )
    assert "WEBHOOK_URL=${WebhookUrl}" in worker_env
    assert "WEBHOOK_SECRET_PARAMETER=${WebhookSecretParameterName}" in worker_env
    policy = resource(cfn, "WebhookSigningKeyPolicy")
    assert policy["Condition"] == "HasWebhookSecret"
    assert policy["Properties"]["Roles"] == [
        {"Ref": "RouterFunctionRole"},
        {"Ref": "WorkerInstanceRole"},
        {"Ref": "ServerInstanceRole"},  # its queue drainer notifies too (issue 15)
    ]
    (statement,) = policy_statements(policy)
    assert actions(statement) == ["ssm:GetParameter"]
    assert sub_text(statement["Resource"]).endswith(":parameter${WebhookSecretParameterName}")
    # A global webhook without a signing key cannot be deployed (webhooks are always signed).
    rule = cfn["Rules"]["WebhookUrlNeedsASecret"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookUrl"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookSecretParameterName"}, ""]}]
    }


# ------------------------------------------------------------------ queue, table, key


def test_work_queue_redrive_retention_visibility_and_encryption(cfn: Template) -> None:
    queue = resource(cfn, "WorkQueue")["Properties"]
    dlq = resource(cfn, "WorkDeadLetterQueue")["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == getatt_arn("WorkDeadLetterQueue")
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    assert dlq["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"]
    assert queue["VisibilityTimeout"] == {"Ref": "WorkerMessageBudgetSeconds"}
    budget = cfn["Parameters"]["WorkerMessageBudgetSeconds"]
    worker_visibility = WorkerSettings.model_fields["visibility_timeout_s"].default
    assert budget["Default"] >= worker_visibility


def test_every_queue_is_encrypted(cfn: Template) -> None:
    queues = resources_of(cfn, "AWS::SQS::Queue")
    assert len(queues) == 5
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name


def test_idempotency_table_expires_records(cfn: Template) -> None:
    table = resource(cfn, "IdempotencyTable")["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_server_key_is_a_parameter_name_never_a_value(cfn: Template) -> None:
    assert not resources_of(cfn, "AWS::SSM::Parameter")
    assert not resources_of(cfn, "AWS::SecretsManager::Secret")
    env = resource(cfn, "RouterFunction")["Properties"]["Environment"]["Variables"]
    assert env["API_KEY_PARAMETER"] == {"Ref": "ApiKeyParameterName"}
    assert default(cfn, "ApiKeyParameterName").startswith("/")


# ------------------------------------------------------------------ launcher


def test_launcher_runs_on_a_scheduler_schedule_with_retries_and_dlq(cfn: Template) -> None:
    (schedule,) = resources_of(cfn, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "LaunchSchedule"}
    assert default(cfn, "LaunchSchedule") == "cron(0 0 * * ? *)"
    assert "Name" not in props  # generated: two stacks in one account do not collide
    target = props["Target"]
    assert target["Arn"] == getatt_arn("LauncherFunction")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == getatt_arn("LauncherDeadLetterQueue")
    role = resource(cfn, target["RoleArn"]["Fn::GetAtt"][0])
    granted = {(a, json.dumps(s["Resource"])) for s in policy_statements(role) for a in actions(s)}
    assert ("sqs:SendMessage", json.dumps(getatt_arn("LauncherDeadLetterQueue"))) in granted


def test_schedule_input_is_a_launcher_request_once_scheduler_fills_it(cfn: Template) -> None:
    (schedule,) = resources_of(cfn, "AWS::Scheduler::Schedule").values()
    text = schedule["Properties"]["Target"]["Input"]
    filled = (
        text.replace("<aws.scheduler.scheduled-time>", "2024-05-01T00:00:00Z")
        .replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3")
        .replace("<aws.scheduler.attempt-number>", "1")
        .replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:eu-north-1:1:schedule/x/y")
    )
    request = parse_request(json.loads(filled))
    assert (request.action, request.trigger) == ("drain", "schedule")
    assert request.scheduled_time is not None and request.scheduled_time.hour == 0


def test_launch_template_is_imdsv2_hop_1_terminate_with_profile(cfn: Template) -> None:
    data = resource(cfn, "WorkerLaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert data["IamInstanceProfile"] == {"Arn": getatt_arn("WorkerInstanceProfile")}
    profile = resource(cfn, "WorkerInstanceProfile")["Properties"]
    assert profile["Roles"] == [{"Ref": "WorkerInstanceRole"}]
    assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])
    assert data["SecurityGroupIds"] == [{"Ref": "WorkerSecurityGroup"}]
    assert "UserData" in data


def test_launcher_environment_points_at_the_template_and_tag(cfn: Template) -> None:
    env = resource(cfn, "LauncherFunction")["Properties"]["Environment"]["Variables"]
    assert env["LAUNCH_TEMPLATE_ID"] == {"Ref": "WorkerLaunchTemplate"}
    assert env["QUEUE_URL"] == {"Ref": "WorkQueue"}
    assert sub_text(env["BATCH_INSTANCE_TAG"]) == batch_tag()
    assert env["LAUNCH_INSTANCE_TYPES"] == {"Fn::Join": [",", {"Ref": "InstanceTypes"}]}
    assert default(cfn, "InstanceTypes") == "g4dn.xlarge"
    assert resource(cfn, "LauncherFunction")["Properties"]["ReservedConcurrentExecutions"] == 1


def test_the_batch_tag_is_one_value_everywhere(cfn: Template) -> None:
    data = resource(cfn, "WorkerLaunchTemplate")["Properties"]["LaunchTemplateData"]
    (instance_tags,) = (
        t["Tags"] for t in data["TagSpecifications"] if t["ResourceType"] == "instance"
    )
    tags = {t["Key"]: sub_text(t["Value"]) for t in instance_tags}
    assert tags[ROLE_TAG_KEY] == batch_tag()
    worker = roles(cfn)["WorkerInstanceRole"]
    (terminate,) = (s for s in policy_statements(worker) if "ec2:TerminateInstances" in actions(s))
    condition = terminate["Condition"]["StringEquals"]
    assert sub_text(condition[f"aws:ResourceTag/{ROLE_TAG_KEY}"]) == batch_tag()
    launcher = roles(cfn)["LauncherFunctionRole"]
    (tagged,) = (
        s for s in policy_statements(launcher) if s.get("Sid") == "LaunchOnlyTaggedBatchInstances"
    )
    assert sub_text(tagged["Condition"]["StringEquals"][f"aws:RequestTag/{ROLE_TAG_KEY}"]) == (
        batch_tag()
    )


# ------------------------------------------------------------------ IAM (P19)

# SSM agent channels (Run Command, Session Manager): ssmmessages and ec2messages have no resource
# types. The instances' statements of AmazonSSMManagedInstanceCore, minus ssm:GetParameter(s).
SSM_AGENT_CHANNELS = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
}

# Actions that support no resource-level scoping, and why each role needs it.
RESOURCE_STAR_ALLOWED = {
    ("LauncherFunctionRole", "ec2:DescribeInstances"),  # find running batch instances (P15)
    ("WorkerInstanceRole", "ecr:GetAuthorizationToken"),  # docker login to ECR
    ("ServerInstanceRole", "ecr:GetAuthorizationToken"),
    *(
        (role, action)
        for role in ("WorkerInstanceRole", "ServerInstanceRole")
        for action in SSM_AGENT_CHANNELS
    ),
}


def test_no_wildcard_actions_and_resource_star_only_where_unscopable(cfn: Template) -> None:
    for name, role in roles(cfn).items():
        for statement in policy_statements(role):
            assert statement.get("Effect", "Allow") == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in actions(statement):
                assert "*" not in action, (name, action)
                if "*" in as_list(statement["Resource"]):
                    assert (name, action) in RESOURCE_STAR_ALLOWED, (name, action)


def test_managed_policies_are_only_the_lambda_basics(cfn: Template) -> None:
    allowed = {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        # SAM adds it for the router's VpcConfig: ENI management only.
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    }
    for role in roles(cfn).values():
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= allowed


S3_OBJECT = re.compile(r"^arn:\$\{AWS::Partition\}:s3:::\$\{BucketName\}/\$\{(\w+)\}\*$")
S3_BUCKET = "arn:${AWS::Partition}:s3:::${BucketName}"


def test_s3_access_is_scoped_to_the_prefixes(cfn: Template) -> None:
    for name, role in roles(cfn).items():
        for statement in policy_statements(role):
            s3_actions = [a for a in actions(statement) if a.startswith("s3:")]
            if not s3_actions:
                continue
            for target in as_list(statement["Resource"]):
                text = sub_text(target)
                if text == S3_BUCKET:
                    assert s3_actions == ["s3:ListBucket"], (name, statement)
                    continue
                match = S3_OBJECT.match(text)
                assert match, (name, text)
                prefix = match.group(1)
                assert prefix in {"AudioPrefix", "TranscriptPrefix", "ModelRegistryPrefix"}
                if prefix in {"AudioPrefix", "ModelRegistryPrefix"}:  # read-only
                    assert s3_actions == ["s3:GetObject"], (name, statement)
                else:
                    assert set(s3_actions) <= {"s3:GetObject", "s3:PutObject"}, name


def test_server_role_reads_its_key_audio_and_image_and_writes_transcripts(cfn: Template) -> None:
    server = roles(cfn)["ServerInstanceRole"]
    assert server["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    profile = resource(cfn, "ServerInstanceProfile")["Properties"]
    assert profile["Roles"] == [{"Ref": "ServerInstanceRole"}]
    granted = {a: s for s in policy_statements(server) for a in actions(s)}
    key = (
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ApiKeyParameterName}"
    )
    assert sub_text(granted["ssm:GetParameter"]["Resource"]) == key
    assert "ssm:GetParameters" not in granted and "ssm:GetParametersByPath" not in granted
    assert sub_text(granted["ecr:BatchGetImage"]["Resource"]).endswith(
        ":repository/${WorkerImageRepository}"
    )
    assert granted["logs:PutLogEvents"]["Resource"] == getatt_arn("ServerLogGroup")
    # The model registry (an s3:// MODEL_ID) is readable by the server and the worker only.
    models = "arn:${AWS::Partition}:s3:::${BucketName}/${ModelRegistryPrefix}*"
    for name, role in roles(cfn).items():
        readers = {
            sub_text(s["Resource"]) for s in policy_statements(role) if "s3:GetObject" in actions(s)
        }
        assert (models in readers) == (name in {"ServerInstanceRole", "WorkerInstanceRole"}), name
    # No EC2 control and no IAM; the queue and the bus only for its drainer (next test).
    assert not [a for a in granted if a.split(":")[0] in {"ec2", "iam"}]


def test_server_role_drains_only_the_work_queue_and_publishes_on_the_bus(cfn: Template) -> None:
    # The server's drainer (issue 15) follows the worker's rules: the same queue actions on the
    # same queue, never a send (nor to the DLQ: the redrive policy moves poison), and
    # events:PutEvents on the chosen bus only. The webhook key: test_webhooks_are_wired_...
    server = roles(cfn)["ServerInstanceRole"]
    worker = roles(cfn)["WorkerInstanceRole"]

    def grants(role: dict[str, Any], service: str) -> list[dict[str, Any]]:
        return [
            s for s in policy_statements(role) if any(a.startswith(service) for a in actions(s))
        ]

    (drain,) = grants(server, "sqs:")
    assert set(actions(drain)) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    assert drain["Resource"] == getatt_arn("WorkQueue")
    assert "Condition" not in drain
    (worker_drain,) = grants(worker, "sqs:")
    assert set(actions(drain)) == set(actions(worker_drain))
    (notify,) = grants(server, "events:")
    (worker_notify,) = grants(worker, "events:")
    assert actions(notify) == ["events:PutEvents"]
    assert sub_text(notify["Resource"]) == sub_text(worker_notify["Resource"])
    assert sub_text(notify["Resource"]).endswith(":event-bus/${EventBusName}")
    # SSE-SQS, not a customer KMS key: neither role needs kms:*.
    assert not grants(server, "kms:") and not grants(worker, "kms:")


def test_server_and_worker_logs_go_to_log_groups_with_the_retention_setting(
    cfn: Template,
) -> None:
    for group in ("ServerLogGroup", "WorkerLogGroup", "RouterLogGroup", "LauncherLogGroup"):
        props = resource(cfn, group)["Properties"]
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, group
    assert default(cfn, "LogRetentionDays") == 30
    for function, group in (
        ("RouterFunction", "RouterLogGroup"),
        ("LauncherFunction", "LauncherLogGroup"),
    ):
        logging = resource(cfn, function)["Properties"]["LoggingConfig"]
        assert logging["LogGroup"] == {"Ref": group}


def test_worker_role_drains_only_the_work_queue(cfn: Template) -> None:
    worker = roles(cfn)["WorkerInstanceRole"]
    assert worker["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    for statement in policy_statements(worker):
        if any(a.startswith("sqs:") for a in actions(statement)):
            assert statement["Resource"] == getatt_arn("WorkQueue")
        if "ec2:TerminateInstances" in actions(statement):
            assert "StringEquals" in statement["Condition"]


def test_pass_role_only_for_the_worker_role_to_ec2(cfn: Template) -> None:
    passing = [
        (name, s)
        for name, role in roles(cfn).items()
        for s in policy_statements(role)
        if "iam:PassRole" in actions(s)
    ]
    assert [name for name, _ in passing] == ["LauncherFunctionRole"]
    statement = passing[0][1]
    assert statement["Resource"] == getatt_arn("WorkerInstanceRole")
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"


def test_launcher_runs_instances_only_from_its_template_image_and_tag(cfn: Template) -> None:
    launcher = roles(cfn)["LauncherFunctionRole"]
    run = [s for s in policy_statements(launcher) if "ec2:RunInstances" in actions(s)]
    for statement in run:
        for target in as_list(statement["Resource"]):
            text = sub_text(target)
            if text.endswith(("instance/*", "volume/*")):
                assert "aws:RequestTag/" + ROLE_TAG_KEY in statement["Condition"]["StringEquals"]
            elif text.endswith(("subnet/*", "network-interface/*")):
                assert "ec2:Vpc" in statement["Condition"]["ArnEquals"]
            else:
                assert text.endswith(
                    (
                        "launch-template/${WorkerLaunchTemplate}",
                        "image/${WorkerAmiId}",
                        "security-group/${WorkerSecurityGroup}",
                        "spot-instances-request/*",
                    )
                ), text
    tagging = [s for s in policy_statements(launcher) if "ec2:CreateTags" in actions(s)]
    assert tagging and all(
        s["Condition"]["StringEquals"]["ec2:CreateAction"] == "RunInstances" for s in tagging
    )


# ------------------------------------------------------------------ network, parameters


def test_nothing_is_open_to_the_internet(cfn: Template) -> None:
    assert "SecurityGroupIngress" not in resource(cfn, "WorkerSecurityGroup")["Properties"]
    for group in resources_of(cfn, "AWS::EC2::SecurityGroup").values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert "CidrIp" not in rule and "CidrIpv6" not in rule
    for rule in resources_of(cfn, "AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in rule["Properties"] and "CidrIpv6" not in rule["Properties"]


def test_parameters_the_issue_lists() -> None:
    parameters = source()["Parameters"]
    assert {
        "BucketName",
        "CreateBucket",
        "AudioPrefix",
        "TranscriptPrefix",
        "ModelId",
        "Language",
        "InstanceTypes",
        "LaunchSchedule",
        "RouterReservedConcurrency",
        "MaxBatchInstances",
        "OnDemandFallback",
        "ApiKeyParameterName",
        "VpcCidr",
        "WebhookUrl",
        "WebhookSecretParameterName",
        "AlarmEmail",
        "QueueAgeAlarmSeconds",
        "MonthlyBudgetUsd",
        "LogRetentionDays",
    } <= set(parameters)
    # Gone with issue 14: the server is reached at the stack's own private address, and its
    # port admits the router's security group only, so there is no URL or CIDR to get wrong.
    assert not {"ServerUrl", "ServerIngressCidr", "RouterVpcAccess", "VpcId", "SubnetIds"} & set(
        parameters
    )


def test_created_bucket_sends_events_to_eventbridge() -> None:
    cfn = translate(CreateBucket="true")
    bucket = resource(cfn, "AudioBucket")
    assert bucket["Condition"] == "CreateBucketCondition"
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"] == {
        "EventBridgeEnabled": True
    }
    assert all(props["PublicAccessBlockConfiguration"].values())


def test_outputs_name_what_operators_and_settings_need(cfn: Template) -> None:
    assert {
        "QueueUrl",
        "DeadLetterQueueUrl",
        "IdempotencyTableName",
        "RouterFunctionArn",
        "LauncherFunctionName",
        "LauncherDeadLetterQueueUrl",
        "WorkerLaunchTemplateId",
        "BatchInstanceTag",
        "WorkerLogGroupName",
        "WorkerImageUri",
        "ServerSecurityGroupId",
        "ServerNetworkInterfaceId",
        "ServerUrl",
        "ServerInstanceProfileName",
        "ServerLogGroupName",
        "ServerInstanceTag",
        "AlarmTopicArn",
    } <= set(cfn["Outputs"])
