"""Start the server: settings (fail fast), the bearer key (env or SSM, read once), uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from server.errors import ServerKeyError
from server.settings import ServerSettings
from transcript_contracts.errors import SettingsError
from transcript_contracts.log_safety import cap_secret_bearing_loggers
from transcript_contracts.settings import load_settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default: PORT, 8000)")


def serve(host: str | None = None, port: int | None = None) -> int:
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = load_settings(ServerSettings, **overrides)
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    import uvicorn

    from server.app import create_app
    from server.runtime import Runtime

    try:
        app = create_app(Runtime(settings))
    except ServerKeyError as exc:
        print(f"the server's key: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="Transcription server")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cap_secret_bearing_loggers()
    return serve(args.host, args.port)
