"""`smart-router local`: the whole pipeline on this machine (no AWS, no GPU)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the whole pipeline locally: moto as AWS, the real server, router and worker",
        description=(
            "Starts moto's server on loopback as S3/SQS/EventBridge/DynamoDB/SSM, creates the "
            "bucket, queues, rule, idempotency table and key parameter, starts the transcription "
            "server with the local model on CPU, and uploads a session. Chunks go direct while "
            "the server is up; queued chunks are drained by the batch worker (with "
            "--server-late, by the server's own drainer once it is up). The session "
            "transcript lands in the output folder. Without files it uploads the sample sessions "
            "in examples/local-sessions (Swedish and English speech)."
        ),
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="audio files of one session, in chunk order"
    )
    parser.add_argument("--session", help="session id for FILES (letters, digits, _ and -)")
    parser.add_argument(
        "--language",
        default=None,
        help=(
            "language of FILES' session, and LANGUAGE of the server and worker (default: "
            "LANGUAGE from the environment or .env, else 'auto': detected per session)"
        ),
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
        "--server-late",
        type=float,
        metavar="SECONDS",
        help=(
            "upload while the server is down (every chunk is queued), start it SECONDS later: "
            "its queue drainer transcribes them, no batch worker runs"
        ),
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
    from smart_router.errors import SessionInputError
    from smart_router.local.run import LocalRunOptions, print_report, run_local, stdout_console
    from smart_router.local.sessions import sample_sessions, session_from_files
    from whisper_convert.prepare import prepare_default_model

    for noisy in ("httpx", "botocore", "smart_router.local.processes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = stdout_console()
    late = args.server_late
    if late is not None and (late < 0 or args.server_down or args.stop_server_after is not None):
        console.print(
            "[red]--server-late needs SECONDS >= 0 and goes without --server-down and "
            "--stop-server-after[/red]"
        )
        return 2
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
        server_late_s=late,
        language=args.language or default_language(console.print),
    )
    try:
        report = run_local(options, console)
    except KeyboardInterrupt:
        # run_local's context managers have stopped the server, worker, router and moto.
        console.print("[yellow]interrupted: every process this run started is stopped[/yellow]")
        return 130
    console.print()
    print_report(report, sessions, console)
    console.print(f"[dim]logs: {args.output / 'logs'}[/dim]")
    return 0 if report.ok else 1


def default_language(note: Callable[[str], object] = print) -> str:
    """``LANGUAGE`` as the server and the worker would read it (the environment, then .env),
    else its default (``auto``). A value that is no language code — a shell's gettext
    ``LANGUAGE=en_US:en`` — is not passed to the child processes: ``note`` says so."""
    from transcript_contracts.language import is_language_code
    from transcript_contracts.settings import EngineSettings

    fallback = str(EngineSettings.model_fields["language"].default)
    value = os.environ.get("LANGUAGE") or _dotenv_value(Path(".env"), "LANGUAGE")
    if not value:
        return fallback
    if not is_language_code(value):
        note(f"LANGUAGE={value!r} is not a language code (a locale list?): using {fallback!r}")
        return fallback
    return value


def _dotenv_value(path: Path, name: str) -> str | None:
    if not path.is_file():
        return None
    from dotenv import dotenv_values

    return dotenv_values(path).get(name) or None


def register_chaos(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chaos",
        help="the local pipeline under faults; prints lost/duplicated/DLQ/stitched counts",
        description=(
            "Uploads CHUNKS chunks in SESSIONS sessions through the local pipeline while the "
            "server is killed and restarted at random, a proxy injects 5xx, lost responses, "
            "hangs and slow answers, a share of events is delivered twice, a worker is killed "
            "mid-batch and a few chunks are corrupt; then drains the queue and counts. Exit 0 "
            "when nothing is lost or duplicated, every complete session is stitched exactly "
            "once and the dead-letter queues hold exactly the corrupt chunks."
        ),
    )
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--corrupt", type=int, help="corrupt chunks (default: 1 %%, at least 1)")
    parser.add_argument("--duplicate-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--upload-rate", type=float, default=2.0, help="chunks uploaded per second (default 2)"
    )
    parser.add_argument(
        "--kill-server-every",
        type=float,
        nargs=2,
        default=(15.0, 40.0),
        metavar=("MIN_S", "MAX_S"),
        help="seconds between server kills, drawn uniformly (default 15 40)",
    )
    parser.add_argument("--output", type=Path, default=Path("output/chaos"))
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.set_defaults(handler=_chaos)


def _chaos(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import logging

    from smart_router.local.chaos import ChaosOptions, run_chaos
    from whisper_convert.prepare import prepare_default_model

    if args.chunks < 1 or args.sessions < 1 or args.sessions > args.chunks:
        print("need 1 <= --sessions <= --chunks")
        return 2
    for noisy in ("httpx", "botocore", "smart_router.local.processes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    model_dir = args.model_dir or prepare_default_model()
    options = ChaosOptions(
        chunks=args.chunks,
        sessions=args.sessions,
        corrupt=args.corrupt,
        duplicate_rate=args.duplicate_rate,
        server_kill_every_s=tuple(args.kill_server_every),
        seed=args.seed,
        upload_rate_per_s=args.upload_rate,
    )
    try:
        report = run_chaos(options, model_dir, args.output)
    except KeyboardInterrupt:
        print("interrupted: every process this run started is stopped")
        return 130
    for line in report.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=2), encoding="utf-8")
    return 0 if report.ok else 1
