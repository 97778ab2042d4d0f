"""Child processes of the local run: the transcription server and the batch worker.

Each is the real program (``python -m server``, ``smart-router worker``) started with settings in
its environment, its output in a log file, and stopped (SIGTERM, then SIGKILL) when the run
ends, on Ctrl-C too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

import httpx

from smart_router.errors import ProcessStartError

logger = logging.getLogger(__name__)

STOP_GRACE_S: Final = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ChildProcess:
    """One child with its log file; ``stop`` is idempotent and safe after it died."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def start(self) -> None:
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(  # noqa: S603 - our own programs, argv list
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: a Ctrl-C in the terminal reaches the local run, which then
            # stops its children in order, instead of killing them mid-write.
            start_new_session=True,
        )
        logger.info("%s started (pid %d), log %s", self.name, self._proc.pid, self.log_path)

    def wait(self, timeout: float | None = None) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: the chaos run's "killed mid-batch"."""
        if self.running and self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM for %.0f s; killing it", self.name, grace_s)
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ServerProcess(ChildProcess):
    """The transcription server (FastAPI + the real local model) on loopback."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        super().__init__(
            "server",
            [sys.executable, "-m", "server", "--host", host, "--port", str(self.port)],
            env,
            log_path,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_healthy(self, timeout_s: float = 300.0) -> None:
        """Until /health says the model is loaded (P6: 503 before)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise ProcessStartError(
                        f"the server exited with code {self.returncode}; its log ends:\n"
                        f"{self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise ProcessStartError(f"the server was not healthy within {timeout_s:.0f} s")


class WorkerProcess(ChildProcess):
    """The batch worker (``smart-router worker``), as it runs on the spot instance."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, name: str = "worker") -> None:
        super().__init__(name, [sys.executable, "-m", "smart_router", "worker"], env, log_path)
