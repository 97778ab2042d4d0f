"""What the local run shows while it works: one row per chunk (route, retries, timings, text).

The table must read cleanly in an 80-column terminal: every row is one line (texts are cut with
an ellipsis; the full transcripts follow in the report), so six chunks and the notes fit a
24-line screen and rich's Live display never has to crop it while it redraws.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from smart_router.local.lambda_runtime import Invocation

ROUTE_STYLES = {
    "forwarded": "green",
    "queued": "yellow",
    "skipped": "cyan",
    "duplicate": "magenta",
    "failed": "red",
    "transcribed by worker": "green",
    "drained by server": "green",
}
# Short labels, so the route column stays narrow and the transcript keeps the width.
ROUTE_LABELS = {"transcribed by worker": "worker", "drained by server": "server drain"}
REASON_LABELS = {
    "server_unhealthy": "unhealthy",
    "retries_exhausted": "retries out",
    "forced": "forced",
}
CHUNK_LABEL_WIDTH = 16
DETAIL_WIDTH = 36
ROUTE_WIDTH = 26
MIN_TRANSCRIPT_WIDTH = 20
NOTES_SHOWN = 6

_CHUNK_URI_RE = re.compile(r"([^/]+)/chunk-0*([0-9]+)\.[^/]+$")
# Control characters (escape sequences, carriage returns, tabs, newlines) would move the cursor
# or break a row across lines and with it the table's borders: text is shown as one clean line.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass
class ChunkRow:
    uri: str
    route: str = "waiting"
    detail: str = ""
    attempts: int = 0
    seconds: float | None = None
    text: str = ""
    deliveries: int = 0


@dataclass
class RunProgress:
    """Thread-safe record of the run, rendered by rich's Live display."""

    rows: dict[str, ChunkRow] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, uri: str) -> None:
        with self._lock:
            self.rows.setdefault(uri, ChunkRow(uri))

    def set_stage(self, stage: str) -> None:
        with self._lock:
            self.stage = stage

    def note(self, line: str) -> None:
        with self._lock:
            self.notes.append(line)

    def record(self, invocation: Invocation) -> None:
        result: dict[str, Any] = invocation.result or {}
        uri = result.get("uri") or _event_uri(invocation.event)
        if uri is None or uri.endswith("manifest.json"):
            stitch = result.get("stitch") or {}
            if stitch.get("status") == "stitched":
                self.note(f"manifest event stitched session {stitch.get('session_id')}")
            return
        with self._lock:
            row = self.rows.setdefault(uri, ChunkRow(uri))
            row.deliveries += 1
            if invocation.error is not None:
                row.route, row.detail = "failed", invocation.error
            elif result.get("duplicate") or result.get("status") == "duplicate":
                # A second delivery: keep the first delivery's route on the row.
                if row.route == "waiting":
                    row.route = "duplicate"
                return
            else:
                row.route = str(result.get("status"))
                row.detail = str(result.get("reason") or "")
            # Forward attempts (0 when the chunk was queued without one); Lambda's invocation
            # count only when the handler failed.
            row.attempts = (
                invocation.attempts if invocation.error else int(result.get("attempts") or 0)
            )
            row.seconds = invocation.seconds
            stitch = result.get("stitch") or {}
            if stitch.get("status") == "stitched":
                self.notes.append(f"router stitched session {stitch.get('session_id')}")

    def set_text(self, uri: str, text: str, *, route: str | None = None) -> None:
        with self._lock:
            row = self.rows.setdefault(uri, ChunkRow(uri))
            row.text = text
            if route is not None:
                row.route = route

    def render(self) -> RenderableType:
        with self._lock:
            title = one_line(f"{self.stage}  ({time.monotonic() - self.started:.0f} s)")
            cells = [
                (
                    chunk_label(row.uri),
                    _route_text(row),
                    str(row.attempts or ""),
                    "" if row.seconds is None else f"{row.seconds:.1f}",
                    one_line(row.text),
                )
                for row in self.rows.values()
            ]
            notes = [
                Text(one_line(line), style="dim", overflow="ellipsis", no_wrap=True)
                for line in self.notes[-NOTES_SHOWN:]
            ]
        return Group(ChunkTable(title, cells), *notes)


@dataclass(frozen=True)
class ChunkTable:
    """The chunk rows, laid out for the width rich offers at render time: the short columns get
    what they need, the route at most ROUTE_WIDTH, the transcript the rest. rich's own layout
    squeezes the transcript to nothing when every column is one line (no_wrap)."""

    title: str
    rows: list[tuple[str, Text, str, str, str]]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        chunk_w = max([len(r[0]) for r in self.rows] + [len("chunk")])
        tries_w = len("tries")
        secs_w = max([len(r[3]) for r in self.rows] + [4])
        route_w = min(max([r[1].cell_len for r in self.rows] + [len("route")]), ROUTE_WIDTH)
        # Five columns: six borders and one space of padding on each side of every cell.
        spare = options.max_width - 16 - chunk_w - tries_w - secs_w - route_w
        if spare < MIN_TRANSCRIPT_WIDTH:
            # A narrow terminal: the route gives way first, down to a few characters.
            route_w = max(route_w - (MIN_TRANSCRIPT_WIDTH - spare), len("route"))
            spare = options.max_width - 16 - chunk_w - tries_w - secs_w - route_w
        table = Table(title=self.title, title_justify="left")
        table.add_column("chunk", width=chunk_w, no_wrap=True, overflow="ellipsis")
        table.add_column("route", width=route_w, no_wrap=True, overflow="ellipsis")
        table.add_column("tries", width=tries_w, justify="right", no_wrap=True)
        table.add_column("s", width=secs_w, justify="right", no_wrap=True)
        table.add_column("transcript", width=max(spare, 1), no_wrap=True, overflow="ellipsis")
        for row in self.rows:
            table.add_row(*row)
        yield table


def one_line(text: str) -> str:
    """``text`` as a single line: control characters and runs of whitespace become one space."""
    return " ".join(_CONTROL_RE.sub(" ", text).split())


def shorten(text: str, width: int) -> str:
    """At most ``width`` characters, cut with an ellipsis."""
    text = one_line(text)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def chunk_label(uri: str) -> str:
    """``s3://b/audio/demo-sv/chunk-0002.ogg`` -> ``demo-sv #2``; a long session id is cut so
    that the chunk number always shows."""
    match = _CHUNK_URI_RE.search(uri)
    if match is None:
        return shorten(uri.rsplit("/", 1)[-1], CHUNK_LABEL_WIDTH)
    number = f" #{int(match.group(2))}"
    return shorten(match.group(1), CHUNK_LABEL_WIDTH - len(number)) + number


def _route_text(row: ChunkRow) -> Text:
    route = Text(ROUTE_LABELS.get(row.route, row.route), style=ROUTE_STYLES.get(row.route, ""))
    if row.detail:
        detail = REASON_LABELS.get(row.detail, row.detail)
        route.append(f" ({shorten(detail, DETAIL_WIDTH)})", style="dim")
    if row.deliveries > 1:
        route.append(f" x{row.deliveries}", style="magenta")
    return route


def _event_uri(event: dict[str, Any]) -> str | None:
    detail = event.get("detail")
    if isinstance(detail, dict):
        bucket = (detail.get("bucket") or {}).get("name")
        key = (detail.get("object") or {}).get("key")
        if bucket and key:
            return f"s3://{bucket}/{key}"
    return None
