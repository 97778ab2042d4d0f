"""`smart-router status SESSION`: each chunk's state, the manifest, the stitch, the queues.

Reads S3 and the queues only (see :mod:`smart_router.session_status` for how the queues are
read without hiding work). Settings: BUCKET_NAME (or ``--bucket``), AUDIO_PREFIX,
TRANSCRIPT_PREFIX, QUEUE_URL and DLQ_URL (both optional).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from transcript_contracts.errors import KeyGrammarError, SettingsError
from transcript_contracts.keys import check_session_id

if TYPE_CHECKING:
    from smart_router.session_status import SessionStatus

_STATE_STYLES = {
    "transcribed": "green",
    "queued": "yellow",
    "failed": "bold red",
    "missing": "dim",
}
# transcribed_by as people read it.
_BY_LABELS = {
    "server-direct": "server (direct)",
    "server-drainer": "server (drained from the queue)",
    "worker": "batch worker",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = subparsers.add_parser(
        "status",
        help="show where a session stands: chunks, manifest, stitch, queues",
        description=(
            "Read S3 and the queues (never the worker) and print each chunk's state "
            "(transcribed, queued, failed with its reason, missing), whether the manifest is "
            "there and whether the session is stitched. The work queue is only counted (a "
            "receive would count toward its maxReceiveCount); the dead-letter queue is peeked "
            "and released at once. Settings: BUCKET_NAME, AUDIO_PREFIX, TRANSCRIPT_PREFIX, "
            "QUEUE_URL, DLQ_URL."
        ),
    )
    st.add_argument("session", help="session id, e.g. meeting-2026-11-21")
    st.add_argument("--bucket", help="bucket to read (default: BUCKET_NAME)")
    st.add_argument("--json", action="store_true", help="print JSON for scripts")
    st.add_argument(
        "--dlq-limit",
        type=int,
        default=200,
        metavar="N",
        help="peek at most N dead-letter messages (default 200)",
    )
    st.add_argument(
        "--dlq-wait-s",
        type=int,
        default=1,
        choices=range(21),
        metavar="S",
        help="long-poll wait of each dead-letter receive, 0-20 s (default 1)",
    )
    st.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config

    from smart_router.errors import StatusError
    from smart_router.session_status import collect_status, status_json
    from smart_router.settings import StatusSettings
    from transcript_contracts.settings import load_settings

    try:
        session_id = check_session_id(args.session)
        settings = load_settings(StatusSettings)
    except (KeyGrammarError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bucket = args.bucket or settings.bucket_name
    if not bucket:
        print("error: set BUCKET_NAME or pass --bucket", file=sys.stderr)
        return 2
    config = Config(connect_timeout=3, read_timeout=25, retries={"mode": "standard"})
    session = boto3.session.Session()
    s3 = session.client("s3", config=config)
    wants_queues = bool(settings.queue_url or settings.dlq_url)
    sqs = session.client("sqs", config=config) if wants_queues else None
    try:
        status = collect_status(
            session_id,
            bucket=bucket,
            layout=settings.layout,
            s3=s3,
            sqs=sqs,
            queue_url=settings.queue_url,
            dlq_url=settings.dlq_url,
            dlq_limit=max(0, args.dlq_limit),
            dlq_wait_s=args.dlq_wait_s,
        )
    except StatusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(status_json(status))
    else:
        render(status, sys.stdout)
    return 0


def summary_lines(status: SessionStatus) -> list[tuple[str, str]]:
    """The header of the human-readable report: (label, text) pairs."""
    if status.manifest_present:
        language = f", language {status.language}" if status.language else ""
        manifest = f"present: {status.chunk_count} chunk(s){language}"
    elif status.manifest_error:
        manifest = f"INVALID: {status.manifest_error}"
    else:
        manifest = "absent (no session transcript until it arrives)"
    if status.stitched:
        formats = ", ".join(k.rsplit(".", 1)[-1] for k in status.session_keys)
        stitched = f"yes ({formats})"
    else:
        stitched = "no"
    counts = status.counts()
    lines = [
        ("manifest", manifest),
        ("stitched", stitched),
        ("chunks", ", ".join(f"{n} {state}" for state, n in counts.items())),
    ]
    writers = status.transcribed_by()
    if writers:
        lines.append(
            (
                "written by",
                ", ".join(f"{n} {_BY_LABELS.get(by, by)}" for by, n in writers.items()),
            )
        )
    wq = status.work_queue
    if wq is not None:
        lines.append(
            (
                "work queue",
                wq.error
                or f"{wq.visible} waiting, {wq.in_flight} in work, {wq.delayed} delayed "
                "(all sessions)",
            )
        )
    dlq = status.dead_letter_queue
    if dlq is not None:
        text = dlq.error or (
            f"{dlq.visible + dlq.in_flight} message(s), {dlq.peeked} peeked, "
            f"{dlq.session_messages} of this session"
        )
        lines.append(("dead letters", text))
    if status.delivery_failures:
        lines.append(("notifications", f"{len(status.delivery_failures)} delivery failure(s)"))
    return lines


def render(status: SessionStatus, out: TextIO) -> None:
    """A report for people: a rich table when rich is installed, plain columns otherwise."""
    title = f"Session {status.session_id} in s3://{status.bucket}"
    if not status.found:
        print(f"{title}: nothing found (no manifest, audio or transcripts)", file=out)
        return
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        _render_plain(status, title, out)
        return
    console = Console(file=out, highlight=False, soft_wrap=True)
    console.print(f"[bold]{title}[/bold]")
    for label, text in summary_lines(status):
        console.print(f"  {label:<13} {text}", markup=False)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("chunk", justify="right")
    table.add_column("state")
    table.add_column("by")
    table.add_column("detail", overflow="fold")
    for chunk in status.chunks:
        detail = chunk.reason or chunk.transcript_key or ""
        if chunk.beyond_manifest:
            detail = f"beyond the manifest's chunk_count; {detail}"
        # Text, not markup: reasons and keys are data ("[...]" must print as it is).
        table.add_row(
            str(chunk.index),
            Text(chunk.state, style=_STATE_STYLES[chunk.state]),
            Text(chunk.transcribed_by or ""),
            Text(detail),
        )
    console.print(table)
    for failure in status.delivery_failures:
        console.print(
            f"  notification not delivered: {failure.get('detail_type', '?')} → "
            f"{failure.get('destination', '?')}: {failure.get('error', '')}",
            markup=False,
        )


def _render_plain(status: SessionStatus, title: str, out: TextIO) -> None:
    print(title, file=out)
    for label, text in summary_lines(status):
        print(f"  {label:<13} {text}", file=out)
    print(f"  {'chunk':>6}  {'state':<12} {'by':<15} detail", file=out)
    for chunk in status.chunks:
        detail = chunk.reason or chunk.transcript_key or ""
        by = chunk.transcribed_by or ""
        print(f"  {chunk.index:>6}  {chunk.state:<12} {by:<15} {detail}", file=out)
    for failure in status.delivery_failures:
        print(
            f"  notification not delivered: {failure.get('detail_type', '?')} -> "
            f"{failure.get('destination', '?')}: {failure.get('error', '')}",
            file=out,
        )
