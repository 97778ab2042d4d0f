"""POST /transcribe-s3: the chunk job (:mod:`chunk_job`) on a direct request.

Input only from ALLOWED_BUCKETS (P17). When ``s3_output_path`` is given it must be the chunk's
own transcript key (docs/design.md §2): the transcript is written create-only (P7), and one
already there is the answer, read with the store's size cap and without inference (P3, P7).
Decoding and inference go through the server's admission (decoded-audio budget, batching).
The session's stitch stays with the caller (the router stitches after a forward and publishes
the event as the winner, P8).

The chunk job's errors map once, here: permanent → 400/409/413/415/422, transient (S3,
network, FETCH_TIMEOUT_S) → 502, which the router retries and then queues.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from chunk_job import ChunkJob, ChunkJobError, ChunkRef
from chunk_job.errors import (
    ChunkTooLargeError,
    ChunkTooLongError,
    ChunkUndecodableError,
    StoredTranscriptInvalidError,
    TransientChunkError,
)
from server import responses
from server.chunk_jobs import server_chunk_job
from server.dependencies import Authorized, RuntimeDep
from server.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ForbiddenInputError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaError,
    UpstreamError,
)
from server.runtime import Runtime
from server.schemas import ErrorOut, S3TranscriptionOut, SegmentOut, TranscribeS3In
from server.transcription import transcribe
from transcript_contracts.keys import S3Location, parse_s3_uri
from transcript_contracts.models import ChunkTranscript

router = APIRouter(dependencies=[Authorized])


@router.post(
    "/transcribe-s3",
    response_model=S3TranscriptionOut,
    responses={409: {"model": ErrorOut}, 502: {"model": ErrorOut}},
)
async def transcribe_s3(rt: RuntimeDep, body: TranscribeS3In) -> Response:
    try:
        return JSONResponse(await _transcribe_s3(rt, body))
    except ChunkJobError as exc:
        raise api_error(exc) from exc


def api_error(exc: ChunkJobError) -> ApiError:
    """The HTTP answer to a chunk job error."""
    if isinstance(exc, TransientChunkError):
        return UpstreamError(exc.reason)
    if isinstance(exc, ChunkTooLargeError):
        return PayloadTooLargeError(exc.reason)
    if isinstance(exc, ChunkUndecodableError):
        return UnsupportedMediaError(exc.reason)
    if isinstance(exc, ChunkTooLongError):
        return UnprocessableError(exc.reason)
    if isinstance(exc, StoredTranscriptInvalidError):
        return ConflictError(exc.reason)
    return BadRequestError(exc.reason)


def direct_job(rt: Runtime) -> ChunkJob:
    return server_chunk_job(rt, "server-direct")


def _allowed(location: S3Location, allowed: list[str], what: str) -> None:
    if location.bucket not in allowed:
        raise ForbiddenInputError(f"{what} bucket {location.bucket!r} is not in ALLOWED_BUCKETS")


def _output_for(job: ChunkJob, rt: Runtime, source: S3Location, uri: str) -> ChunkRef:
    output = parse_s3_uri(uri)
    _allowed(output, rt.settings.allowed_buckets, "output")
    ref = job.chunk(source.bucket, source.key)
    expected = job.transcript_key(ref)
    if output.key != expected or output.bucket != source.bucket:
        raise BadRequestError(
            f"s3_output_path must be s3://{source.bucket}/{expected} for this input"
        )
    return ref


def _stored_answer(stored: ChunkTranscript, uri: str) -> dict[str, Any]:
    return S3TranscriptionOut(
        transcription=stored.text,
        segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in stored.segments],
        duration=stored.duration_s,
        language=stored.language,
        model=stored.model,
        processing_time=0.0,
        s3_output_path=uri,
        written=False,
        already_existed=True,
    ).model_dump()


async def _transcribe_s3(rt: Runtime, body: TranscribeS3In) -> dict[str, Any]:
    source = parse_s3_uri(body.s3_input_path)
    _allowed(source, rt.settings.allowed_buckets, "input")
    job = direct_job(rt)
    ref: ChunkRef | None = None
    language = body.language
    if body.s3_output_path is not None:
        ref = _output_for(job, rt, source, body.s3_output_path)
        # Already transcribed: the stored transcript is the answer, no inference (P3, P7).
        stored = await asyncio.to_thread(job.stored_transcript, ref)
        if stored is not None:
            return _stored_answer(stored, body.s3_output_path)
        language = await asyncio.to_thread(
            job.language_for, ref.session_id, body.language, ref.bucket
        )

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="transcribe-s3-") as tmp:
        fetched = await asyncio.to_thread(job.fetch, source.bucket, source.key, Path(tmp))
        fetch_s = time.perf_counter() - started
        result, elapsed = await transcribe(rt, fetched.path, language)

    written = False
    if ref is not None:
        transcript = await asyncio.to_thread(
            partial(job.build, told=language), ref, fetched.etag, result, fetch_s + elapsed
        )
        written = await asyncio.to_thread(job.write, ref, transcript)
    out = responses.body(rt, result, elapsed)
    out.update(
        s3_output_path=body.s3_output_path if ref is not None else None,
        written=written,
        already_existed=ref is not None and not written,
    )
    return out
