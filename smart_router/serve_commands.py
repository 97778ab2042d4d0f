"""`smart-router serve`: the transcription server."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from server.main import add_arguments

    parser = subparsers.add_parser(
        "serve",
        help="run the transcription server (FastAPI + Whisper)",
        description="Run the transcription server of docs/design.md §4. Settings come from the "
        "environment and .env (see .env.example): API_KEY or API_KEY_PARAMETER, MODEL_ID, "
        "LANGUAGE, DEVICE, ALLOWED_BUCKETS, size and duration caps, batching.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from server.main import serve

    return serve(args.host, args.port)
