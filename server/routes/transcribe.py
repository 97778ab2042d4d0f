"""POST /transcribe (multipart upload) and POST /transcribe-url (https, public addresses only)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import JSONResponse

from server import responses
from server.dependencies import Authorized, RuntimeDep, read_upload
from server.schemas import (
    TEXT_FORMAT_RESPONSES,
    ResponseFormat,
    TranscribeUrlIn,
    TranscriptionOut,
    VerboseTranscriptionOut,
)
from server.transcription import transcribe as run_transcription
from server.url_fetch import fetch_url
from transcript_contracts.language import LANGUAGE_PATTERN

router = APIRouter(dependencies=[Authorized])


@router.post(
    "/transcribe",
    response_model=TranscriptionOut | VerboseTranscriptionOut,
    responses=TEXT_FORMAT_RESPONSES,
)
async def transcribe(
    rt: RuntimeDep,
    audio: Annotated[UploadFile, File(description="the audio file")],
    language: Annotated[str | None, Form(pattern=LANGUAGE_PATTERN)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
) -> Response:
    data = await read_upload(audio)
    result, elapsed = await run_transcription(rt, data, language)
    return responses.formatted(rt, result, elapsed, response_format)


@router.post("/transcribe-url", response_model=TranscriptionOut)
async def transcribe_url(rt: RuntimeDep, body: TranscribeUrlIn) -> Response:
    data = await asyncio.to_thread(
        fetch_url,
        body.url,
        max_bytes=rt.settings.max_download_bytes,
        timeout_s=rt.settings.fetch_timeout_s,
        resolver=rt.resolver,
        transport=rt.url_transport,
    )
    result, elapsed = await run_transcription(rt, data, body.language)
    return JSONResponse(responses.body(rt, result, elapsed))
