"""POST /v1/audio/transcriptions: OpenAI-compatible (json, text, srt, vtt, verbose_json; word
timestamps with ``timestamp_granularities[]=word``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import JSONResponse

from server import responses
from server.dependencies import Authorized, RuntimeDep, read_upload
from server.errors import BadRequestError
from server.schemas import (
    TEXT_FORMAT_RESPONSES,
    OpenAITranscriptionOut,
    ResponseFormat,
    TimestampGranularity,
    VerboseTranscriptionOut,
)
from server.transcription import transcribe
from transcript_contracts.language import LANGUAGE_PATTERN

router = APIRouter(dependencies=[Authorized])


@router.post(
    "/v1/audio/transcriptions",
    summary="OpenAI-compatible transcription",
    response_model=OpenAITranscriptionOut | VerboseTranscriptionOut,
    responses=TEXT_FORMAT_RESPONSES,
)
async def openai_transcriptions(
    rt: RuntimeDep,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form(pattern=LANGUAGE_PATTERN)] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    timestamp_granularities: Annotated[
        list[TimestampGranularity] | None, Form(alias="timestamp_granularities[]")
    ] = None,
) -> Response:
    # model, prompt and temperature are accepted for compatibility; the server's own model
    # and greedy decoding are what run.
    if timestamp_granularities and response_format != "verbose_json":
        # OpenAI's rule: granularities only shape verbose_json.
        raise BadRequestError("timestamp_granularities[] needs response_format=verbose_json")
    data = await read_upload(file)
    result, _ = await transcribe(rt, data, language)
    if response_format == "json":
        return JSONResponse({"text": result.text})
    granularities = timestamp_granularities or ["segment"]
    return responses.formatted(rt, result, 0.0, response_format, granularities)
