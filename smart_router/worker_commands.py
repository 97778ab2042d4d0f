"""`smart-router worker`: drain the SQS queue with the batch worker (issue 6)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="drain the SQS queue: transcribe queued chunks in batches, stitch sessions",
        description="Run the batch worker of docs/design.md P10-P14. Settings come from the "
        "environment and .env (see .env.example): QUEUE_URL, BUCKET_NAME, MODEL_ID, LANGUAGE, "
        "DEVICE, WORKER_BATCH_SIZE, VISIBILITY_TIMEOUT_S, IDLE_EXIT_S, MAX_RUNTIME_S, "
        "SHUTDOWN_ON_EXIT, IMDS_ENABLED. AWS_ENDPOINT_URL points it at an emulator.",
    )
    parser.add_argument(
        "--idle-exit-s",
        type=float,
        default=None,
        help="exit after the queue stays empty this long (overrides IDLE_EXIT_S; 0: drain once)",
    )
    parser.add_argument(
        "--max-runtime-s",
        type=float,
        default=None,
        help="hard deadline in seconds (overrides MAX_RUNTIME_S)",
    )
    parser.add_argument(
        "--no-shutdown",
        action="store_true",
        help="never power the machine off, whatever SHUTDOWN_ON_EXIT says",
    )
    parser.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from batch_worker.main import run_worker
    from transcript_contracts.errors import SettingsError

    overrides: dict[str, object] = {}
    if args.idle_exit_s is not None:
        overrides["idle_exit_s"] = args.idle_exit_s
    if args.max_runtime_s is not None:
        overrides["max_runtime_s"] = args.max_runtime_s
    if args.no_shutdown:
        overrides["shutdown_on_exit"] = False
    try:
        return run_worker(overrides)
    except SettingsError as exc:
        print(f"smart-router worker: {exc}", file=sys.stderr)
        return 2
