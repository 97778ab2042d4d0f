"""Progress of a worker run: counters, a rich display on a terminal, JSON log lines otherwise."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, Any, Final, Protocol

from transcript_contracts.log_safety import cap_secret_bearing_loggers

logger = logging.getLogger(__name__)

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


@dataclass
class WorkerStats:
    """Counters of one run. ``busy_s``: wall time spent on batches (not on empty polls)."""

    transcribed: int = 0
    skipped: int = 0
    failed: int = 0
    released: int = 0
    sessions_stitched: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0

    @property
    def done(self) -> int:
        return self.transcribed + self.skipped

    @property
    def speed(self) -> float | None:
        """Audio seconds per wall second spent on batches (x real time)."""
        return self.audio_s / self.busy_s if self.busy_s > 0 and self.audio_s > 0 else None

    def eta_s(self, remaining: int | None) -> float | None:
        handled = self.done + self.failed
        if remaining is None or handled == 0:
            return None
        return remaining * self.busy_s / handled

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["audio_hours"] = round(self.audio_s / 3600, 4)
        data["speed_x_realtime"] = None if self.speed is None else round(self.speed, 2)
        data["audio_s"] = round(self.audio_s, 2)
        data["busy_s"] = round(self.busy_s, 2)
        return data


class ProgressSink(Protocol):
    def update(self, stats: WorkerStats, remaining: int | None) -> None: ...

    def close(self) -> None: ...


def summary_line(stats: WorkerStats, reason: str) -> str:
    speed = f"{stats.speed:.1f}x real time" if stats.speed is not None else "n/a"
    return (
        f"worker exit ({reason}): transcribed {stats.transcribed}, skipped {stats.skipped}, "
        f"failed {stats.failed}, released {stats.released}, "
        f"sessions stitched {stats.sessions_stitched}, "
        f"audio {stats.audio_s / 3600:.3f} h, speed {speed}"
    )


class LogProgress:
    """One structured log line per batch (for journald / CloudWatch)."""

    def update(self, stats: WorkerStats, remaining: int | None) -> None:
        eta = stats.eta_s(remaining)
        logger.info(
            "progress",
            extra={
                **stats.to_dict(),
                "queue_remaining": remaining,
                "eta_s": None if eta is None else round(eta, 1),
            },
        )

    def close(self) -> None:
        return None


class RichProgress:
    """A live line on a terminal: messages done, audio hours, speed, ETA."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]worker"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            transient=False,
        )
        self._task = self._progress.add_task("worker", total=None, detail="waiting for work")
        self._progress.start()

    def update(self, stats: WorkerStats, remaining: int | None) -> None:
        handled = stats.done + stats.failed
        total = None if remaining is None else handled + remaining
        eta = stats.eta_s(remaining)
        speed = f"{stats.speed:.1f}x" if stats.speed is not None else "-"
        detail = (
            f"audio {stats.audio_s / 3600:.2f} h · {speed} real time · "
            f"ETA {_clock(eta)} · failed {stats.failed}"
        )
        self._progress.update(self._task, completed=handled, total=total, detail=detail)

    def close(self) -> None:
        self._progress.stop()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(level: str, stream: IO[str], *, rich_terminal: bool) -> None:
    """Rich handler on a terminal, JSON lines otherwise (replaces earlier root handlers): the
    worker's one logging setup."""
    handler: logging.Handler
    if rich_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # LOG_LEVEL=DEBUG must not print the webhook signing key read from SSM (P16).
    cap_secret_bearing_loggers()
