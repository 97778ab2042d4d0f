"""The live table and the report of `smart-router local` read cleanly in an 80-column terminal:
no line wider than the terminal, every table row one line between intact borders, and the
texts (transcripts, errors, paths) cut or wrapped rather than the layout."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console, RenderableType

from smart_router.local.lambda_runtime import Invocation
from smart_router.local.pipeline import SessionResult
from smart_router.local.progress import RunProgress, chunk_label, one_line
from smart_router.local.run import LocalRunReport, print_report
from smart_router.local.sessions import LocalSession, sample_sessions

BUCKET = "local-transcripts"
LONG_SESSION = "a-session-name-someone-chose-for-their-talk-at-the-conference-2026"
SWEDISH = (
    "Välkommen till dagens möte. Vi börjar med förra veckans protokoll. Protokollet godkändes "
    "utan ändringar. Nästa punkt är budgeten för nästa år."
)
ERROR = (
    "ServerRejectedError: the server refused the audio: HTTP 415 "
    '{"error": {"code": "unsupported_media", "message": "cannot decode audio: Invalid data '
    'found when processing input"}} ' + "x" * 300
)


def _event(key: str) -> dict[str, Any]:
    return {"detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "etag": "e"}}}


def _invocation(key: str, result: dict[str, Any] | None, error: str | None = None) -> Invocation:
    return Invocation(
        event=_event(key),
        result=result,
        error=error,
        attempts=3 if error else 1,
        seconds=123.45,
        duplicate_delivery=False,
    )


def _busy_progress() -> RunProgress:
    """Every kind of row the run shows, with the longest texts it can meet."""
    progress = RunProgress()
    progress.set_stage("server up at http://127.0.0.1:45678: chunks go direct, the rest queue")
    for session in ("demo-sv", "demo-en", LONG_SESSION):
        for index in range(4):
            progress.expect(f"s3://{BUCKET}/audio/{session}/chunk-{index:04d}.ogg")
    for session in ("demo-sv", "demo-en", LONG_SESSION):
        key = f"audio/{session}/chunk-0000.ogg"
        uri = f"s3://{BUCKET}/{key}"
        progress.record(_invocation(key, {"uri": uri, "status": "forwarded", "attempts": 4}))
        progress.record(_invocation(key, {"uri": uri, "status": "duplicate", "duplicate": True}))
        progress.set_text(uri, SWEDISH + "\n[music]\ttack\r\x1b[2J")
        key = f"audio/{session}/chunk-0001.ogg"
        uri = f"s3://{BUCKET}/{key}"
        result = {"uri": uri, "status": "queued", "reason": "retries_exhausted", "attempts": 4}
        progress.record(_invocation(key, result))
        progress.set_text(uri, SWEDISH, route="transcribed by worker")
        progress.record(_invocation(f"audio/{session}/chunk-0002.ogg", None, error=ERROR))
    progress.note("router stitched session " + LONG_SESSION + " after the manifest arrived last")
    return progress


def _render(renderable: RenderableType, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


def _assert_fits(lines: list[str], width: int) -> None:
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, f"{len(too_wide)} lines over {width} columns: {too_wide[:3]}"


@pytest.mark.parametrize("width", [80, 60, 120])
def test_live_table_fits_the_terminal_with_intact_borders(width: int) -> None:
    lines = _render(_busy_progress().render(), width)
    _assert_fits(lines, width)
    # Every table line starts and ends on a border, all of the same length: nothing wrapped.
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert len(table) == 4 + 12  # top, header, rule, bottom + one line per chunk
    assert {cell_len(line) for line in table} == {cell_len(table[0])}
    for line in table:
        assert line[-1] in "┓┃┩│┘", line
    # Text never breaks a row: escape sequences and newlines became spaces.
    assert "\x1b" not in "".join(lines)


def test_at_80_columns_each_row_shows_its_chunk_route_and_some_transcript() -> None:
    lines = _render(_busy_progress().render(), 80)
    rows = [line for line in lines if line.startswith("│")]
    first = rows[0]
    assert "demo-sv #0" in first and "forwarded x2" in first and "123.5" in first
    assert "Välkommen till d" in first  # the transcript column is not squeezed to nothing
    assert "worker (retries" in rows[1]
    assert "failed (" in rows[2]
    long_rows = [row for row in rows if row.startswith("│ a-session")]
    assert [r.split("│")[1].strip()[-2:] for r in long_rows] == ["#0", "#1", "#2", "#3"]
    assert "router stitched session a-session" in lines[-1]


def test_chunk_labels_keep_the_chunk_number() -> None:
    assert chunk_label(f"s3://{BUCKET}/audio/demo-sv/chunk-0002.ogg") == "demo-sv #2"
    label = chunk_label(f"s3://{BUCKET}/audio/{LONG_SESSION}/chunk-0000123.wav")
    assert label.endswith("… #123") and len(label) <= 16
    assert one_line("a\nb\t\tc\x1b[2J d ") == "a b c [2J d"


def _report() -> tuple[LocalRunReport, list[LocalSession]]:
    sessions = sample_sessions()
    deep = Path("/tmp") / ("very-long-folder-name-" * 4) / "output" / "local" / "demo-sv"
    stitched = SessionResult(
        session_id="demo-sv",
        stitched=True,
        files={fmt: deep / f"session.{fmt}" for fmt in ("json", "txt", "srt", "vtt")},
        text=(SWEDISH + " [music] ") * 4,
    )
    unstitched = SessionResult(session_id="demo-en", stitched=False, files={}, text=None)
    key = "audio/demo-en/chunk-0002.ogg"
    failure: dict[str, object] = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": _event(key),
        "responsePayload": {"errorType": "ServerRejectedError", "errorMessage": ERROR},
    }
    report = LocalRunReport(
        results=[stitched, unstitched],
        routes={},
        router_failures=[failure],
        dead_letters=[{"key": "audio/demo-en/chunk-0001.ogg"}],
        worker_exit=0,
        notifications=[
            {"detail-type": "Session Transcribed", "detail": {"session_id": "demo-sv"}},
            {"detail-type": "Chunk Failed", "detail": {"session_id": "demo-en"}},
        ],
        incomplete={"demo-en": ["chunk 2: failed (" + ERROR + ")", "chunk 1: queued"]},
    )
    return report, sessions


def test_report_fits_80_columns_and_prints_texts_verbatim() -> None:
    report, sessions = _report()
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    print_report(report, sessions, console)
    lines = console.export_text().splitlines()
    _assert_fits(lines, 80)
    text = "\n".join(lines)
    # A transcript's brackets are text, not rich markup.
    assert "[music]" in text
    assert "WER against the spoken text:" in text
    assert "session.vtt" in text.replace("\n", "")
    # The router failure names the chunk and the error, not the whole on-failure record.
    failure = next(i for i, line in enumerate(lines) if line.startswith("router gave up on"))
    assert "audio/demo-en/chunk-0002.ogg: ServerRejectedError" in lines[failure]
    assert "requestContext" not in text and "approximateInvokeCount" not in text
    assert "…" in text  # the 400-character error was cut
    assert "in the dead-letter queue: audio/demo-en/chunk-0001.ogg" in text
    assert "not stitched: the session is incomplete" in text
