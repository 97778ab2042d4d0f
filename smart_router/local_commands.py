"""`smart-router local`: the whole pipeline on this machine (no AWS, no GPU)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the whole pipeline locally: moto as AWS, the real server, router and worker",
        description=(
            "Starts moto's server on loopback as S3/SQS/EventBridge/DynamoDB/SSM, creates the "
            "bucket, queues, rule, idempotency table and key parameter, starts the transcription "
            "server with the local model on CPU, and uploads a session. Chunks go direct while "
            "the server is up; queued chunks are drained by the batch worker. The session "
            "transcript lands in the output folder. Without files it uploads the sample sessions "
            "in examples/local-sessions (Swedish and English speech)."
        ),
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="audio files of one session, in chunk order"
    )
    parser.add_argument("--session", help="session id for FILES (letters, digits, _ and -)")
    parser.add_argument(
        "--language", default=None, help="language of FILES' session (default: LANGUAGE, 'sv')"
    )
    parser.add_argument(
        "--server-down",
        action="store_true",
        help="do not start the server: every chunk takes the queue path to the batch worker",
    )
    parser.add_argument(
        "--stop-server-after",
        type=int,
        metavar="N",
        help="stop the server after N chunks went direct; the rest take the queue path",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("output/local"),
        help="folder for the session transcripts and the logs (default: output/local)",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model directory (default: prepared by `model prepare`)"
    )
    parser.set_defaults(handler=_local)


def _local(args: argparse.Namespace) -> int:
    from smart_router.local.run import LocalRunOptions, print_report, run_local, stdout_console
    from smart_router.local.sessions import (
        SessionInputError,
        sample_sessions,
        session_from_files,
    )
    from whisper_engine.prepare import prepare_default_model

    console = stdout_console()
    try:
        if args.files:
            if not args.session:
                raise SessionInputError("--session NAME is needed with files")
            sessions = [session_from_files(args.session, list(args.files), args.language)]
        elif args.session:
            raise SessionInputError("--session needs audio files after it")
        else:
            sessions = sample_sessions()
    except SessionInputError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    model_dir = args.model_dir or prepare_default_model()
    options = LocalRunOptions(
        sessions=sessions,
        model_dir=model_dir,
        output_dir=args.output,
        server_down=args.server_down,
        stop_server_after=args.stop_server_after,
        language=args.language or "sv",
    )
    report = run_local(options, console)
    print_report(report, sessions, console)
    console.print(f"[dim]logs: {args.output / 'logs'}[/dim]")
    return 0 if report.ok else 1
