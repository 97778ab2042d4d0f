"""`smart-router`: subcommands for every part of the system.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function, so
that ``--help`` stays cheap: heavy imports (torch, boto3) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from smart_router import (
    contract_commands,
    local_commands,
    model_commands,
    serve_commands,
    status_commands,
    worker_commands,
)
from transcript_contracts.log_safety import cap_secret_bearing_loggers

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
REGISTRARS: tuple[Registrar, ...] = (
    contract_commands.register,
    model_commands.register,
    serve_commands.register,
    local_commands.register,
    local_commands.register_chaos,
    worker_commands.register,
    status_commands.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smart-router",
        description=(
            "Smart Transcription Router: audio chunks uploaded to S3 are transcribed by a GPU "
            "Whisper server, or queued for a spot GPU batch worker, and stitched into one "
            "session transcript."
        ),
        epilog="Run `smart-router COMMAND --help` for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    """The command line's one logging setup: stderr, DEBUG with ``-v``, and never a secret
    (botocore would print the SSM key `serve` reads at DEBUG, P16)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cap_secret_bearing_loggers()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)
