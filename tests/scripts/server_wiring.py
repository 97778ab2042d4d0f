"""The server's queue drainer as deployed (issue 15): what step-320 gives the server container,
and what the server's instance role may do with the queue. Used by test_rehearsal.py on the stack
moto built, and by test_dry_run.py on the script's text."""

from __future__ import annotations

import ast
import base64
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from server.settings import ServerSettings

# The env file step-320's user data writes (a quoted here-document: taken literally).
SERVER_ENV_BLOCK = re.compile(r"<<'SERVER_ENV'\n(.*?)\nSERVER_ENV\n", re.S)
SERVER_ENV_FILE = "/etc/smart-router/server.env"
# Read by the AWS SDK in the container, not by the server's settings.
SDK_NAMES = {"AWS_REGION", "AWS_DEFAULT_REGION"}
QUEUE_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
}


def server_env(user_data: str) -> dict[str, str]:
    """KEY=VALUE lines of the server's env file, as docker --env-file reads them."""
    match = SERVER_ENV_BLOCK.search(user_data)
    assert match, "step-320's user data writes no server env file"
    assert f"--env-file {SERVER_ENV_FILE}" in user_data  # and the container reads it
    pairs = [line.split("=", 1) for line in match.group(1).splitlines()]
    assert all(len(pair) == 2 for pair in pairs), match.group(1)
    return {key: value for key, value in pairs}


class _EnvFileOnly(ServerSettings):
    """ServerSettings read from one env file and nothing else (not the test's environment)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, dotenv_settings)


def server_settings(env: dict[str, str]) -> ServerSettings:
    """The settings the server would start with: every name is a real setting, and the file
    passes the server's own validation (empty values count as unset, as in the container)."""
    names = set(env) - SDK_NAMES
    assert names <= {name.upper() for name in ServerSettings.model_fields}, names
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "server.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in env.items() if k in names))
        return _EnvFileOnly(_env_file=path)


def instance_user_data(ec2: Any, instance_id: str) -> str:
    answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(answer["UserData"]["Value"]).decode()


def role_statements(iam: Any, role: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies (the stack's standalone policies too)."""
    statements: list[dict[str, Any]] = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto answers a Python repr, not JSON
            document = ast.literal_eval(document)
        found = document["Statement"]
        statements += found if isinstance(found, list) else [found]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def assert_server_drains_the_work_queue(
    ec2: Any, iam: Any, sqs: Any, out: dict[str, str], values: dict[str, str]
) -> None:
    """The server launched by step-320 is told the stack's work queue and the notification
    settings, and its role may drain that queue (and no other) and publish on the bus."""
    env = server_env(instance_user_data(ec2, values["SERVER_INSTANCE_ID"]))
    assert env["QUEUE_URL"] == out["QueueUrl"] == values["QUEUE_URL"]
    settings = server_settings(env)
    assert settings.drains  # the drainer starts with the server
    assert settings.allowed_buckets == [values["BUCKET_NAME"]]
    assert settings.event_bus_name == values["EVENT_BUS_NAME"]
    assert settings.webhook_secret_parameter == values["WEBHOOK_SECRET_PARAMETER"]
    assert settings.api_key_parameter == values["API_KEY_PARAMETER"]
    assert "API_KEY" not in env and "WEBHOOK_SECRET" not in env  # names only, never a key

    (role,) = iam.get_instance_profile(InstanceProfileName=out["ServerInstanceProfileName"])[
        "InstanceProfile"
    ]["Roles"]
    statements = role_statements(iam, role["RoleName"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_grants = [s for s in statements if any(a[:4] == "sqs:" for a in as_list(s["Action"]))]
    granted = {a for s in queue_grants for a in as_list(s["Action"])}
    assert granted == QUEUE_ACTIONS  # receive, delete, heartbeat; never send
    for statement in queue_grants:
        assert as_list(statement["Resource"]) == [queue_arn], statement
    region, account = queue_arn.split(":")[3:5]
    bus = f"arn:aws:events:{region}:{account}:event-bus/{settings.event_bus_name}"
    (notify,) = [s for s in statements if "events:PutEvents" in as_list(s["Action"])]
    assert as_list(notify["Resource"]) == [bus]
    webhook_key = f"parameter{values['WEBHOOK_SECRET_PARAMETER']}"
    assert any(
        "ssm:GetParameter" in as_list(s["Action"])
        and any(str(r).endswith(webhook_key) for r in as_list(s["Resource"]))
        for s in statements
    ), "the server cannot read the webhook signing key"
