"""The FastAPI app: factory, lifespan and routes of DESIGN.md §4."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import s3_input
from server.auth import BearerAuth
from server.body_limit import BodyLimitMiddleware
from server.errors import (
    BadRequestError,
    ServerBusyError,
    ServiceUnavailableError,
    install_error_handlers,
)
from server.runtime import Runtime, gpu_available
from server.schemas import (
    ErrorOut,
    HealthOut,
    ResponseFormat,
    S3TranscriptionOut,
    SegmentOut,
    TranscribeS3In,
    TranscribeUrlIn,
    TranscriptionOut,
)
from server.url_fetch import fetch_url
from transcript_contracts.formats import render, to_srt, to_vtt
from transcript_contracts.keys import parse_s3_uri
from transcript_contracts.models import ChunkTranscript, Segment, SourceObject
from whisper_engine.results import TranscriptionResult

logger = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 413, 415, 422, 503)
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def _authorized(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    auth: BearerAuth = request.app.state.auth
    auth.check(authorization)


Authorized = Depends(_authorized)


async def _transcribe(
    runtime: Runtime, source: bytes | Path, language: str | None
) -> tuple[TranscriptionResult, float]:
    """Decode off the event loop, then hand the audio to the inference worker and wait."""
    worker = runtime.worker
    if worker is None:
        raise ServiceUnavailableError(runtime.load_error or "the model is still loading")
    if worker.saturated:
        # Refuse before decoding: a busy server should not spend CPU on work it can't take.
        raise ServerBusyError(
            f"{worker.depth} transcriptions are waiting; try again later",
            retry_after_s=worker.retry_after_s(),
        )
    from whisper_engine.audio import decode_audio

    started = time.perf_counter()
    samples = await asyncio.to_thread(
        decode_audio, source, max_duration_s=runtime.settings.max_audio_seconds
    )
    future = worker.submit(samples, language or runtime.settings.language)
    runtime.metrics.queue_depth.set(worker.depth)
    result = await future
    elapsed = time.perf_counter() - started
    runtime.metrics.queue_depth.set(worker.depth)
    runtime.metrics.audio_seconds.inc(result.duration_s)
    if elapsed > 0 and result.duration_s > 0:
        runtime.metrics.real_time_factor.observe(result.duration_s / elapsed)
    return result, elapsed


def _body(runtime: Runtime, result: TranscriptionResult, elapsed: float) -> dict[str, Any]:
    return TranscriptionOut(
        transcription=result.text,
        segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in result.segments],
        duration=result.duration_s,
        language=result.language,
        model=result.model,
        processing_time=round(elapsed, 4),
        gpu_memory_used=runtime.gpu_memory_bytes(),
    ).model_dump()


def _segments(result: TranscriptionResult) -> list[Segment]:
    return [Segment(start=s.start, end=max(s.start, s.end), text=s.text) for s in result.segments]


def _formatted(
    runtime: Runtime, result: TranscriptionResult, elapsed: float, fmt: ResponseFormat
) -> Response:
    if fmt == "text":
        return PlainTextResponse(result.text)
    if fmt == "srt":
        return PlainTextResponse(to_srt(_segments(result)), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(to_vtt(_segments(result)), media_type="text/vtt")
    if fmt == "verbose_json":
        return JSONResponse(_verbose(result))
    return JSONResponse(_body(runtime, result, elapsed))


def _verbose(result: TranscriptionResult) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "language": result.language,
        "duration": result.duration_s,
        "text": result.text,
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


async def _read_upload(upload: UploadFile) -> bytes:
    data = await upload.read()
    if not data:
        raise BadRequestError("the uploaded file is empty")
    return data


def create_app(runtime: Runtime) -> FastAPI:
    """Build the app around a runtime (tests inject fakes at the runtime's seams)."""
    settings = runtime.settings
    if settings.api_key is None:
        raise ValueError("the server needs API_KEY (resolve API_KEY_PARAMETER before create_app)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="Smart Transcription Router — transcription server",
        version="0.1.0",
        description="Whisper transcription. Every endpoint but /health needs "
        '`Authorization: Bearer <key>`. Errors are `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.runtime = runtime
    app.state.auth = BearerAuth(settings.api_key)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_upload_bytes)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        runtime.metrics.requests.labels(path, str(response.status_code)).inc()
        runtime.metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def health(rt: RuntimeDep) -> JSONResponse:
        worker = rt.worker
        if worker is not None and worker.alive:
            status, detail = ("busy", "queue is full") if worker.saturated else ("healthy", None)
        elif rt.load_error:
            status, detail = "unavailable", rt.load_error
        elif worker is not None:
            status, detail = "unavailable", "inference worker stopped"
        else:
            status, detail = "loading", "the model is loading"
        body = HealthOut(
            status=status,
            model_loaded=rt.engine is not None,
            gpu_available=gpu_available(),
            device=rt.engine.device if rt.engine else None,
            model=rt.engine.model_name if rt.engine else None,
            memory_usage=rt.memory_usage(),
            queue_depth=worker.depth if worker else 0,
            detail=detail,
        )
        return JSONResponse(body.model_dump(), status_code=200 if status == "healthy" else 503)

    @app.get("/metrics", dependencies=[Authorized], response_class=PlainTextResponse)
    async def metrics(rt: RuntimeDep) -> Response:
        if rt.worker is not None:
            rt.metrics.queue_depth.set(rt.worker.depth)
        rt.metrics.gpu_memory.set(rt.gpu_memory_bytes() or 0)
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/transcribe", dependencies=[Authorized], response_model=TranscriptionOut)
    async def transcribe(
        rt: RuntimeDep,
        audio: Annotated[UploadFile, File(description="the audio file")],
        language: Annotated[str | None, Form(pattern=r"^(auto|[a-z]{2,3})$")] = None,
        response_format: Annotated[ResponseFormat, Form()] = "json",
    ) -> Response:
        data = await _read_upload(audio)
        result, elapsed = await _transcribe(rt, data, language)
        return _formatted(rt, result, elapsed, response_format)

    @app.post("/transcribe-url", dependencies=[Authorized], response_model=TranscriptionOut)
    async def transcribe_url(rt: RuntimeDep, body: TranscribeUrlIn) -> Response:
        data = await asyncio.to_thread(
            fetch_url,
            body.url,
            max_bytes=rt.settings.max_download_bytes,
            timeout_s=rt.settings.fetch_timeout_s,
            resolver=rt.resolver,
            transport=rt.url_transport,
        )
        result, elapsed = await _transcribe(rt, data, body.language)
        return JSONResponse(_body(rt, result, elapsed))

    @app.post("/transcribe-s3", dependencies=[Authorized], response_model=S3TranscriptionOut)
    async def transcribe_s3(rt: RuntimeDep, body: TranscribeS3In) -> Response:
        return JSONResponse(await _transcribe_s3(rt, body))

    @app.post(
        "/v1/audio/transcriptions",
        dependencies=[Authorized],
        summary="OpenAI-compatible transcription",
    )
    async def openai_transcriptions(
        rt: RuntimeDep,
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()] = "whisper-1",
        language: Annotated[str | None, Form(pattern=r"^(auto|[a-z]{2,3})$")] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[ResponseFormat, Form()] = "json",
        temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    ) -> Response:
        # model, prompt and temperature are accepted for compatibility; the server's own model
        # and greedy decoding are what run.
        data = await _read_upload(file)
        result, _ = await _transcribe(rt, data, language)
        if response_format == "json":
            return JSONResponse({"text": result.text})
        return _formatted(rt, result, 0.0, response_format)

    return app


async def _transcribe_s3(rt: Runtime, body: TranscribeS3In) -> dict[str, Any]:
    settings = rt.settings
    source = parse_s3_uri(body.s3_input_path)
    s3_input.check_bucket(source, settings.allowed_buckets, "input")
    output = None
    chunk = None
    if body.s3_output_path is not None:
        output = parse_s3_uri(body.s3_output_path)
        s3_input.check_bucket(output, settings.allowed_buckets, "output")
        chunk = settings.layout.parse_audio_chunk(source.key)
        expected = settings.layout.transcript_for(chunk)
        if output.key != expected or output.bucket != source.bucket:
            raise BadRequestError(
                f"s3_output_path must be s3://{source.bucket}/{expected} for this input"
            )
        if await asyncio.to_thread(s3_input.exists, rt.s3, output):
            # Already transcribed (P3/P7): answer from the stored transcript, no inference.
            raw = await asyncio.to_thread(s3_input.read_json, rt.s3, output)
            stored = ChunkTranscript.model_validate_json(raw)
            return S3TranscriptionOut(
                transcription=stored.text,
                segments=[
                    SegmentOut(start=s.start, end=s.end, text=s.text) for s in stored.segments
                ],
                duration=stored.duration_s,
                language=stored.language,
                model=stored.model,
                processing_time=0.0,
                s3_output_path=output.uri,
                written=False,
                already_existed=True,
            ).model_dump()

    with tempfile.TemporaryDirectory(prefix="transcribe-s3-") as tmp:
        obj, path = await asyncio.to_thread(
            s3_input.download, rt.s3, source, settings.max_download_bytes, Path(tmp)
        )
        result, elapsed = await _transcribe(rt, path, body.language)

    written = False
    if output is not None and chunk is not None:
        transcript = ChunkTranscript(
            session_id=chunk.session_id,
            chunk_index=chunk.index,
            source=SourceObject(bucket=source.bucket, key=source.key, etag=obj.etag),
            language=result.language,
            model=result.model,
            duration_s=result.duration_s,
            text=result.text,
            segments=_segments(result),
            processing_s=round(elapsed, 4),
            created_at=datetime.now(UTC),
        )
        written = await asyncio.to_thread(
            s3_input.put_create_only,
            rt.s3,
            output,
            render(transcript, "json"),
            "application/json",
        )
    out = _body(rt, result, elapsed)
    out.update(
        s3_output_path=output.uri if output else None,
        written=written,
        already_existed=output is not None and not written,
    )
    return out
