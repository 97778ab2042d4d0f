"""No log level prints a secret (P16): one check for every deployable's logging setup.

A known secret sits in moto's SSM; the deployable's own logging setup runs at DEBUG; the
secret is read through the shared reader (``SsmSecret``, behind the router's server key, the
server's key and the webhook signing key); the logs must not hold it. Then the same read with
botocore uncapped must show it: proof that the capture would have seen a leak.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import boto3
from moto import mock_aws
from mypy_boto3_ssm import SSMClient

from transcript_store.ssm_secret import SsmSecret

SECRET: Final = "sk-log-safety-5f1d0c93-never-printed"
PARAMETER: Final = "/log-safety/secret"
REGION: Final = "eu-north-1"


def store_secret() -> SSMClient:
    """Put the secret into SSM (moto must be on) and return the client."""
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=SECRET, Type="SecureString", Overwrite=True)
    return ssm


@contextmanager
def ssm_holding_the_secret() -> Iterator[SSMClient]:
    with mock_aws():
        yield store_secret()


def read_secret(ssm: SSMClient) -> str:
    """What every deployable does with a secret in SSM: one read, cached."""
    source = SsmSecret(
        value=None, parameter=PARAMETER, ssm=lambda: ssm, error=RuntimeError, missing="", what="x"
    )
    return source.get()


def check_no_secret_in_debug_logs(ssm: SSMClient, logs: Callable[[], str]) -> None:
    """Read the secret at DEBUG; ``logs`` must not hold it, but must once botocore is let
    through (the test would see a leak)."""
    root = logging.getLogger()
    assert root.getEffectiveLevel() == logging.DEBUG, "the check must run at DEBUG"
    assert read_secret(ssm) == SECRET
    logging.getLogger("tests.log_safety").debug("debug lines are captured")
    assert "debug lines are captured" in logs()
    assert SECRET not in logs()
    botocore = logging.getLogger("botocore")
    capped = botocore.level
    botocore.setLevel(logging.DEBUG)
    try:
        read_secret(ssm)
    finally:
        botocore.setLevel(capped)
    assert SECRET in logs(), "the capture missed botocore's DEBUG lines: the check proves nothing"
