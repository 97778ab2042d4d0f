"""The chunk job as the server runs it, for a direct ``/transcribe-s3`` request or for its queue
drainer: the server's limits, S3 client and engine settings; only who wrote the transcript
differs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chunk_job import ChunkJob, Limits
from transcript_contracts.models import TranscribedBy
from transcript_store import TranscriptStore

if TYPE_CHECKING:
    from server.runtime import Runtime


def server_chunk_job(runtime: Runtime, transcribed_by: TranscribedBy) -> ChunkJob:
    settings = runtime.settings
    return ChunkJob(
        s3=runtime.s3,
        store=TranscriptStore(runtime.s3),
        layout=settings.layout,
        limits=Limits(
            settings.max_download_bytes, settings.max_audio_seconds, settings.fetch_timeout_s
        ),
        transcribed_by=transcribed_by,
        default_language=settings.language,
        model_version=runtime.model_version,
        word_timestamps=settings.word_timestamps,
    )
