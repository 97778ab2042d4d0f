"""Response bodies built from a transcription: the server's JSON, OpenAI's formats, subtitles."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from server.runtime import Runtime
from server.schemas import ResponseFormat, SegmentOut, TimestampGranularity, TranscriptionOut
from transcript_contracts.formats import to_srt, to_vtt
from transcript_contracts.models import TranscriptSegment as Segment
from whisper_engine.results import TranscriptionResult

# OpenAI's default timestamp granularity.
SEGMENTS_ONLY: tuple[TimestampGranularity, ...] = ("segment",)


def body(runtime: Runtime, result: TranscriptionResult, elapsed: float) -> dict[str, Any]:
    return TranscriptionOut(
        transcription=result.text,
        segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in result.segments],
        duration=result.duration_s,
        language=result.language,
        model=result.model,
        processing_time=round(elapsed, 4),
        gpu_memory_used=runtime.gpu_memory_bytes(),
    ).model_dump()


def segments(result: TranscriptionResult) -> list[Segment]:
    return [Segment(start=s.start, end=max(s.start, s.end), text=s.text) for s in result.segments]


def formatted(
    runtime: Runtime,
    result: TranscriptionResult,
    elapsed: float,
    fmt: ResponseFormat,
    granularities: Collection[TimestampGranularity] = SEGMENTS_ONLY,
) -> Response:
    if fmt == "text":
        return PlainTextResponse(result.text)
    if fmt == "srt":
        return PlainTextResponse(to_srt(segments(result)), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(to_vtt(segments(result)), media_type="text/vtt")
    if fmt == "verbose_json":
        return JSONResponse(verbose(result, granularities))
    return JSONResponse(body(runtime, result, elapsed))


def verbose(
    result: TranscriptionResult, granularities: Collection[TimestampGranularity] = SEGMENTS_ONLY
) -> dict[str, Any]:
    """OpenAI's verbose_json; fields Whisper-the-API has and this engine doesn't are neutral.
    ``segments`` for the "segment" granularity (the default), ``words`` for "word": each word
    without the leading space the engine keeps, as OpenAI writes them."""
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": result.language,
        "duration": result.duration_s,
        "text": result.text,
    }
    if "word" in granularities:
        out["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in result.segments
            for w in s.words or ()
        ]
    if "segment" not in granularities:
        return out
    return out | {
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(result.segments)
        ],
    }
