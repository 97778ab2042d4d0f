"""``smart-router local``: one real run of the whole pipeline on this machine, shown live."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from smart_router.evaluation import wer
from smart_router.local.aws import Names
from smart_router.local.lambda_runtime import Invocation, redirect_router_output
from smart_router.local.pipeline import LocalPipeline, PipelineConfig, SessionResult
from smart_router.local.progress import RunProgress, one_line, shorten
from smart_router.local.sessions import LocalSession
from transcript_contracts.keys import KeyLayout

logger = logging.getLogger(__name__)

# An error message is cut here in the report; the full one is in output/local/logs.
FAILURE_MESSAGE_CHARS = 400


@dataclass(frozen=True)
class LocalRunOptions:
    sessions: list[LocalSession]
    model_dir: Path
    output_dir: Path
    server_down: bool = False
    # Stop the server after this many chunks went direct: the rest take the queue path.
    stop_server_after: int | None = None
    # Upload while the server is down, start it this many seconds later: its drainer empties
    # the queue, no batch worker runs.
    server_late_s: float | None = None
    language: str = "sv"


@dataclass(frozen=True)
class LocalRunReport:
    results: list[SessionResult]
    routes: dict[str, str]
    router_failures: list[dict[str, object]]
    dead_letters: list[dict[str, object]]
    worker_exit: int | None
    notifications: list[dict[str, object]]
    # `smart-router status` of each session that was not stitched.
    incomplete: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return all(r.stitched for r in self.results) and not self.router_failures


def run_local(options: LocalRunOptions, console: Console) -> LocalRunReport:
    progress = RunProgress()
    names = Names()
    layout_prefix = f"s3://{names.bucket}/"
    late = options.server_late_s
    config = PipelineConfig(
        work_dir=options.output_dir,
        model_dir=options.model_dir,
        names=names,
        start_server=not options.server_down and late is None,
        server_drains=late is not None,
        language=options.language,
    )
    forwarded = 0
    lock = threading.Lock()
    pipeline_ref: list[LocalPipeline] = []

    def on_invocation(invocation: Invocation) -> None:
        nonlocal forwarded
        progress.record(invocation)
        if options.stop_server_after is None or not invocation.result:
            return
        if invocation.result.get("status") != "forwarded":
            return
        with lock:
            forwarded += 1
            stop_now = forwarded == options.stop_server_after
        if stop_now:
            progress.note(f"stopping the server after {forwarded} direct chunks")
            # In the invocation's thread: the next chunk is uploaded after this returns.
            pipeline_ref[0].stop_server()

    for session in options.sessions:
        for chunk in session.chunks:
            progress.expect(layout_prefix + session.chunk_key(_layout(names), chunk))

    (options.output_dir / "logs").mkdir(parents=True, exist_ok=True)
    router_log = (options.output_dir / "logs" / "router.log").open("w", encoding="utf-8")
    with (
        router_log,
        Live(get_renderable=progress.render, console=console, refresh_per_second=4),
        LocalPipeline(config, on_invocation=on_invocation) as pipeline,
        redirect_router_output(router_log),
    ):
        pipeline_ref.append(pipeline)
        progress.set_stage(
            "server down: chunks go to the queue"
            if options.server_down or late is not None
            else f"server up at {pipeline.server.url if pipeline.server else '?'}: chunks go direct"
        )
        uploads_started = time.monotonic()
        for session in options.sessions:
            if options.stop_server_after is None:
                pipeline.upload_session(session)
                continue
            # One chunk at a time, so the server stops exactly after the N-th direct chunk.
            pipeline.upload_manifest(session)
            for chunk in session.chunks:
                pipeline.upload_chunk(session, chunk.index)
                pipeline.wait_router_idle()
        pipeline.wait_router_idle()
        _show_texts(pipeline, options.sessions, progress)
        worker_exit: int | None = None
        queued = pipeline.work_queue_depth()
        if late is not None:
            wait_s = max(0.0, uploads_started + late - time.monotonic())
            progress.set_stage(f"{queued} chunk(s) queued; the server starts in {wait_s:.0f} s")
            time.sleep(wait_s)
            progress.set_stage("the server starts; its drainer empties the queue")
            pipeline.start_server()
            pipeline.wait_queue_drained()
            pipeline.wait_router_idle()
            _show_texts(pipeline, options.sessions, progress)
        elif queued:
            progress.set_stage(f"the batch worker drains {queued} queued chunk(s)")
            worker_exit = pipeline.run_worker()
            pipeline.wait_router_idle()
            _show_texts(pipeline, options.sessions, progress)
        progress.set_stage("done")
        results = [
            pipeline.fetch_session(s.session_id, options.output_dir) for s in options.sessions
        ]
        router_failures = list(pipeline.peek_queue(pipeline.resources.router_failure_queue_url))
        dead_letters = list(pipeline.peek_queue(pipeline.resources.dead_letter_queue_url))
        notifications = list(pipeline.peek_queue(pipeline.resources.notification_queue_url))
        incomplete = {
            r.session_id: [
                f"chunk {c.index}: {c.state}" + (f" ({c.reason})" if c.reason else "")
                for c in pipeline.session_status(r.session_id).chunks
                if c.state != "transcribed"
            ]
            for r in results
            if not r.stitched
        }
        routes = {uri: row.route for uri, row in progress.rows.items()}
    return LocalRunReport(
        results, routes, router_failures, dead_letters, worker_exit, notifications, incomplete
    )


def _layout(names: Names) -> KeyLayout:
    return KeyLayout(names.audio_prefix, names.transcript_prefix)


# A chunk transcript's transcribed_by as the live table's route; a direct transcription keeps
# the router's own ("forwarded").
_ROUTE_OF: dict[str | None, str] = {
    "worker": "transcribed by worker",
    "server-drainer": "drained by server",
}


def _show_texts(
    pipeline: LocalPipeline, sessions: list[LocalSession], progress: RunProgress
) -> None:
    from transcript_store import TranscriptStore

    store = TranscriptStore(pipeline.clients.s3)
    bucket = pipeline.config.names.bucket
    for session in sessions:
        for chunk in session.chunks:
            uri = f"s3://{bucket}/{session.chunk_key(pipeline.layout, chunk)}"
            if progress.rows.get(uri) and progress.rows[uri].text:
                continue
            transcript = store.load_chunk_transcript(
                bucket, session.session_id, chunk.index, pipeline.layout
            )
            if transcript is not None:
                progress.set_text(
                    uri, transcript.text, route=_ROUTE_OF.get(transcript.transcribed_by)
                )


def print_report(report: LocalRunReport, sessions: list[LocalSession], console: Console) -> None:
    """What the run produced, after the live table: each session's transcript (wrapped to the
    terminal's width), its WER, its files, the events published and what failed.

    Transcripts, paths and error messages are printed as plain text, never as rich markup: a
    transcript's "[music]" would otherwise be taken for a style and vanish.
    """
    for result in report.results:
        console.rule(f"session {result.session_id}")
        if not result.stitched:
            console.print(Text.assemble(("not stitched", "red"), ": the session is incomplete"))
            for line in report.incomplete.get(result.session_id, []):
                console.print(Text(f"  {one_line(line)}"))
            continue
        console.print(Text(result.text or ""))
        session = next(s for s in sessions if s.session_id == result.session_id)
        if session.reference_text and result.text:
            score = wer(session.reference_text, result.text)
            console.print(Text(f"WER against the spoken text: {score:.2f}", style="dim"))
        for fmt, path in result.files.items():
            console.print(Text(f"  {fmt:4} {path}"))
    console.rule("events published (EventBridge, default bus)")
    for event in report.notifications:
        detail = event.get("detail")
        session_id = detail.get("session_id") if isinstance(detail, dict) else None
        console.print(Text(f"  {event.get('detail-type')}: session {session_id}"))
    for record in report.router_failures:
        console.print(Text.assemble(("router gave up on ", "red"), _failure_line(record)))
    for message in report.dead_letters:
        console.print(Text.assemble(("in the dead-letter queue: ", "red"), str(message.get("key"))))


def _failure_line(record: dict[str, object]) -> str:
    """``key: ErrorType: message`` from Lambda's on-failure record (not the whole record: its
    request payload alone fills a screen)."""
    request = record.get("requestPayload")
    response = record.get("responsePayload")
    key: object = None
    if isinstance(request, dict):
        detail = request.get("detail")
        obj = detail.get("object") if isinstance(detail, dict) else None
        key = obj.get("key") if isinstance(obj, dict) else request.get("key")
    if not isinstance(response, dict):
        return f"{key or 'an event'}: {shorten(str(response), FAILURE_MESSAGE_CHARS)}"
    message = shorten(str(response.get("errorMessage")), FAILURE_MESSAGE_CHARS)
    return f"{key or 'an event'}: {response.get('errorType')}: {message}"


def stdout_console() -> Console:
    # The router's output is redirected away from sys.stdout during the run; rich keeps the
    # real terminal.
    return Console(file=sys.__stdout__)
