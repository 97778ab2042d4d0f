"""`smart-router status` settings: where a session's pieces are; every value optional (an empty
one counts as unset, as everywhere)."""

from __future__ import annotations

from pydantic import Field

from transcript_contracts.settings import BucketName, PrefixSettings


class StatusSettings(PrefixSettings):
    """`smart-router status`: where a session's pieces are (read-only; every value optional)."""

    bucket_name: BucketName | None = Field(
        None, description="S3 bucket that holds the audio chunks and the transcripts."
    )
    queue_url: str | None = Field(None, description="URL of the SQS work queue.")
    dlq_url: str | None = Field(
        None,
        description=(
            "URL of the work queue's dead-letter queue (the template's DeadLetterQueueUrl); "
            "`smart-router status` reads failed chunks from it."
        ),
    )
