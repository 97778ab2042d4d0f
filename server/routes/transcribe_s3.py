"""POST /transcribe-s3: audio from an allowed bucket, the chunk transcript written create-only.

When ``s3_output_path`` is given it must be the chunk's own transcript key (docs/design.md §2);
a transcript already there is the answer, without inference (P3, P7).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from server import responses, s3_input
from server.dependencies import Authorized, RuntimeDep
from server.errors import BadRequestError
from server.runtime import Runtime
from server.schemas import S3TranscriptionOut, SegmentOut, TranscribeS3In
from server.transcription import transcribe
from transcript_contracts.formats import render
from transcript_contracts.keys import AudioChunkKey, S3Location, parse_s3_uri
from transcript_contracts.models import ChunkTranscript, SourceObject

router = APIRouter(dependencies=[Authorized])


@router.post("/transcribe-s3", response_model=S3TranscriptionOut)
async def transcribe_s3(rt: RuntimeDep, body: TranscribeS3In) -> Response:
    return JSONResponse(await _transcribe_s3(rt, body))


def _output_for(rt: Runtime, source: S3Location, uri: str) -> tuple[S3Location, AudioChunkKey]:
    settings = rt.settings
    output = parse_s3_uri(uri)
    s3_input.check_bucket(output, settings.allowed_buckets, "output")
    chunk = settings.layout.parse_audio_chunk(source.key)
    expected = settings.layout.transcript_for(chunk)
    if output.key != expected or output.bucket != source.bucket:
        raise BadRequestError(
            f"s3_output_path must be s3://{source.bucket}/{expected} for this input"
        )
    return output, chunk


def _stored_answer(raw: bytes, output: S3Location) -> dict[str, Any]:
    stored = ChunkTranscript.model_validate_json(raw)
    return S3TranscriptionOut(
        transcription=stored.text,
        segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in stored.segments],
        duration=stored.duration_s,
        language=stored.language,
        model=stored.model,
        processing_time=0.0,
        s3_output_path=output.uri,
        written=False,
        already_existed=True,
    ).model_dump()


async def _transcribe_s3(rt: Runtime, body: TranscribeS3In) -> dict[str, Any]:
    settings = rt.settings
    source = parse_s3_uri(body.s3_input_path)
    s3_input.check_bucket(source, settings.allowed_buckets, "input")
    target = None
    if body.s3_output_path is not None:
        target = _output_for(rt, source, body.s3_output_path)
        if await asyncio.to_thread(s3_input.exists, rt.s3, target[0]):
            # Already transcribed (P3/P7): answer from the stored transcript, no inference.
            raw = await asyncio.to_thread(s3_input.read_json, rt.s3, target[0])
            return _stored_answer(raw, target[0])

    with tempfile.TemporaryDirectory(prefix="transcribe-s3-") as tmp:
        obj, path = await asyncio.to_thread(
            s3_input.download, rt.s3, source, settings.max_download_bytes, Path(tmp)
        )
        result, elapsed = await transcribe(rt, path, body.language)

    written = False
    if target is not None:
        output, chunk = target
        transcript = ChunkTranscript(
            session_id=chunk.session_id,
            chunk_index=chunk.index,
            source=SourceObject(bucket=source.bucket, key=source.key, etag=obj.etag),
            language=result.language,
            model=result.model,
            model_version=rt.model_version,
            duration_s=result.duration_s,
            text=result.text,
            segments=responses.segments(result),
            processing_s=round(elapsed, 4),
            created_at=datetime.now(UTC),
        )
        written = await asyncio.to_thread(
            s3_input.put_create_only, rt.s3, output, render(transcript, "json"), "application/json"
        )
    out = responses.body(rt, result, elapsed)
    out.update(
        s3_output_path=target[0].uri if target else None,
        written=written,
        already_existed=target is not None and not written,
    )
    return out
