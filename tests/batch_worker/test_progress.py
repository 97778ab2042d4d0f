"""The worker's one logging setup (``batch_worker.progress.configure_logging``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from batch_worker.progress import configure_logging
from tests.support.log_safety import check_no_secret_in_debug_logs, ssm_holding_the_secret


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    botocore_level = logging.getLogger("botocore").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("botocore").setLevel(botocore_level)


@pytest.mark.usefixtures("root_logging")
def test_log_level_debug_never_prints_the_webhook_secret_read_from_ssm() -> None:
    # LOG_LEVEL=DEBUG on a worker whose WEBHOOK_SECRET_PARAMETER is read from SSM: botocore,
    # left at NOTSET as in a fresh process, would print the decrypted value.
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    stream = io.StringIO()
    configure_logging("DEBUG", stream, rich_terminal=False)
    with ssm_holding_the_secret() as ssm:
        check_no_secret_in_debug_logs(ssm, stream.getvalue)
