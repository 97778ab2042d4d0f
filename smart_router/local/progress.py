"""What the local run shows while it works: one row per chunk (route, retries, timings, text)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
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
}


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
            table = Table(title=f"{self.stage}  ({time.monotonic() - self.started:.0f} s)")
            table.add_column("chunk", no_wrap=True)
            table.add_column("route")
            table.add_column("tries", justify="right")
            table.add_column("s", justify="right")
            table.add_column("transcript", overflow="fold")
            for row in self.rows.values():
                name = row.uri.split("/", 3)[-1]
                route = Text(row.route, style=ROUTE_STYLES.get(row.route, ""))
                if row.detail:
                    route.append(f" ({row.detail})", style="dim")
                if row.deliveries > 1:
                    route.append(f" x{row.deliveries}", style="magenta")
                table.add_row(
                    name,
                    route,
                    str(row.attempts or ""),
                    "" if row.seconds is None else f"{row.seconds:.1f}",
                    row.text,
                )
            notes = [Text(line, style="dim") for line in self.notes[-6:]]
        return Group(table, *notes)


def _event_uri(event: dict[str, Any]) -> str | None:
    detail = event.get("detail")
    if isinstance(detail, dict):
        bucket = (detail.get("bucket") or {}).get("name")
        key = (detail.get("object") or {}).get("key")
        if bucket and key:
            return f"s3://{bucket}/{key}"
    return None
