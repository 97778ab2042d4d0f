"""Request and response bodies of the API (docs/design.md §4)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from transcript_contracts.language import LANGUAGE_PATTERN

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
TimestampGranularity = Literal["word", "segment"]
HealthStatus = Literal["healthy", "loading", "busy", "unavailable"]


class SegmentOut(BaseModel):
    start: float
    end: float
    text: str


class TranscriptionOut(BaseModel):
    transcription: str
    segments: list[SegmentOut]
    duration: float
    language: str
    model: str
    processing_time: float
    gpu_memory_used: int | None = None


class VerboseSegmentOut(BaseModel):
    """A segment of OpenAI's verbose_json; fields this engine has no value for are neutral."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class VerboseWordOut(BaseModel):
    """A word of verbose_json with ``timestamp_granularities[]=word`` (OpenAI's shape)."""

    word: str
    start: float
    end: float


class VerboseTranscriptionOut(BaseModel):
    """``response_format=verbose_json`` (OpenAI's shape): ``segments`` unless only word
    timestamps were asked for, ``words`` when they were."""

    task: Literal["transcribe"]
    language: str
    duration: float
    text: str
    segments: list[VerboseSegmentOut] | None = None
    words: list[VerboseWordOut] | None = None


class OpenAITranscriptionOut(BaseModel):
    """``response_format=json`` of the OpenAI-compatible route."""

    text: str


# The non-JSON answers of the upload routes (response_format text, srt, vtt), documented next
# to the JSON ones so that clients and the schema checks know every content type they may get.
_TEXT: dict[str, object] = {"schema": {"type": "string"}}
TEXT_FORMAT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "json and verbose_json as JSON; text, srt and vtt as plain text",
        "content": {"text/plain": _TEXT, "application/x-subrip": _TEXT, "text/vtt": _TEXT},
    }
}


class S3TranscriptionOut(TranscriptionOut):
    s3_output_path: str | None = None
    written: bool = Field(False, description="True if this call wrote the output object")
    already_existed: bool = Field(
        False, description="True if the output object was already there (P7: 412 is success)"
    )


class TranscribeS3In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_input_path: str = Field(max_length=1100, examples=["s3://bucket/audio/s1/chunk-0001.mp3"])
    s3_output_path: str | None = Field(
        None, max_length=1100, examples=["s3://bucket/transcripts/s1/chunk-0001.json"]
    )
    language: str | None = Field(None, max_length=8, pattern=LANGUAGE_PATTERN)


class TranscribeUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://example.com/talk.mp3"])
    language: str | None = Field(None, max_length=8, pattern=LANGUAGE_PATTERN)


class HealthOut(BaseModel):
    status: HealthStatus
    model_loaded: bool
    gpu_available: bool
    device: str | None
    model: str | None
    model_version: str | None = None
    memory_usage: dict[str, int]
    queue_depth: int
    detail: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail
