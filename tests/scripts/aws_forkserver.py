"""A fork server for the AWS CLI, so that the step scripts' many ``aws`` calls against moto cost
a fork instead of a Python start-up (about 1 s a call on a 2-core CI machine, most of it
importing awscli and parsing service models; a fork is a few milliseconds).

The server imports awscli, builds the CLI driver and loads the service models the steps use,
then listens on a Unix socket. ``write_client`` writes an ``aws`` executable (stdlib only, run
with ``-I -S``) that sends its argv, environment, working directory and its stdin/stdout/stderr
file descriptors; the server forks, the child takes those descriptors and that environment and
runs the real ``awscli`` driver's ``main(argv)``; its exit status goes back to the client.
Everything the CLI does after start-up is the real CLI's code; only the start-up is shared.
The steps reach it through ``AWS_CLI`` (scripts/lib/common.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import struct
import sys
import traceback
from pathlib import Path
from typing import Any

# The services the steps call (the models are loaded once, before the first fork).
SERVICES = (
    "cloudformation",
    "dynamodb",
    "ec2",
    "ecr",
    "events",
    "iam",
    "lambda",
    "s3",
    "sqs",
    "ssm",
    "sts",
)
_HEADER = struct.Struct("!Q")
_STATUS = struct.Struct("!i")


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    (length,) = _HEADER.unpack(header)
    payload = b""
    while len(payload) < length:
        chunk = conn.recv(length - len(payload))
        if not chunk:
            raise ConnectionError("client went away")
        payload += chunk
    request: dict[str, Any] = json.loads(payload)
    return request, fds


def _run_child(driver: Any, request: dict[str, Any], fds: list[int]) -> int:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    try:
        status = driver.main(request["argv"])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report like a crashed CLI, never kill the server
        traceback.print_exc()
        status = 255
    sys.stdout.flush()
    sys.stderr.flush()
    return int(status or 0)


def serve(path: str) -> None:
    from awscli.clidriver import create_clidriver  # type: ignore[import-untyped]

    driver = create_clidriver()
    commands = driver._get_command_table()
    for service in SERVICES:
        # Parsers, service models, endpoint rules: what each call would otherwise load again.
        commands["s3api" if service == "s3" else service]._get_command_table()
        driver.session.create_client(
            service, region_name="us-east-1", endpoint_url="http://127.0.0.1:1"
        )
    # Credentials are each call's own (its environment), never the warm-up's.
    driver.session._credentials = None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}
    sys.stdout.flush()
    while True:
        # Poll for exited children only while some run; otherwise sleep until a client comes.
        for _key, _ in selector.select(timeout=0.005 if waiting else None):
            conn, _ = listener.accept()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in waiting.values():
                    other.close()
                os._exit(_run_child(driver, request, fds))
            for fd in fds:
                os.close(fd)
            waiting[pid] = conn
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid)
            # A client killed meanwhile (a test's timeout) has nothing left to be told.
            with contextlib.suppress(OSError):
                conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))
            conn.close()


_CLIENT = """\
#!{python} -IS
# The `aws` of tests/scripts: forwards to tests/scripts/aws_forkserver.py at {path}.
import json, os, socket, struct, sys
payload = json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}).encode()
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
    conn.connect({path!r})
    socket.send_fds(conn, [struct.pack("!Q", len(payload))], [0, 1, 2])
    conn.sendall(payload)
    answer = b""
    while len(answer) < 4:
        chunk = conn.recv(4 - len(answer))
        if not chunk:
            sys.exit(255)
        answer += chunk
status = struct.unpack("!i", answer)[0]
sys.exit(128 - status if status < 0 else status)
"""


def write_client(directory: Path, socket_path: str) -> Path:
    client = directory / "aws"
    client.write_text(_CLIENT.format(python=sys.executable, path=socket_path))
    client.chmod(0o755)
    return client


if __name__ == "__main__":
    serve(sys.argv[1])
