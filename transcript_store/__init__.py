"""AWS storage operations shared by the deployables: transcripts in S3, secrets in SSM, the
depth of SQS queues.

Needs only boto3 (plus the contracts package): HEAD-based existence checks that fail loudly
(P3), create-only writes (P7, P8), manifest and chunk-transcript loading, the
"stitch if complete" step that writes the session transcript exactly once
(:mod:`transcript_store.s3`), a secret read once from settings or SSM
(:mod:`transcript_store.ssm_secret`) and a queue's message counts
(:mod:`transcript_store.queue_depth`).
"""

from transcript_store.errors import (
    InvalidDocumentError,
    QueueReadError,
    StorageError,
    TranscriptStoreError,
)
from transcript_store.queue_depth import QueueDepth, read_queue_depth
from transcript_store.s3 import StitchOutcome, StitchStatus, TranscriptStore

__all__ = [
    "InvalidDocumentError",
    "QueueDepth",
    "QueueReadError",
    "StitchOutcome",
    "StitchStatus",
    "StorageError",
    "TranscriptStore",
    "TranscriptStoreError",
    "read_queue_depth",
]
