"""S3 storage operations on transcripts, shared by the router and the batch worker.

Needs only boto3 (plus the contracts package): HEAD-based existence checks that fail loudly
(P3), create-only writes (P7, P8), manifest and chunk-transcript loading, and the
"stitch if complete" step that writes the session transcript exactly once.
"""

from transcript_store.errors import InvalidDocumentError, StorageError, TranscriptStoreError
from transcript_store.s3 import StitchOutcome, StitchStatus, TranscriptStore

__all__ = [
    "InvalidDocumentError",
    "StitchOutcome",
    "StitchStatus",
    "StorageError",
    "TranscriptStore",
    "TranscriptStoreError",
]
