"""The chunk job: one audio chunk in S3 to its create-only chunk transcript, written once and
used by every path that transcribes a chunk — the server's ``POST /transcribe-s3``, its queue
drainer and the batch worker (:mod:`chunk_job.job`).

No web framework here: the server maps the job's two error kinds to HTTP, the queue consumers
(``batch_worker.batch``) to SQS visibility, the dead-letter queue and ``Chunk Failed``.
"""

from chunk_job.errors import (
    ChunkJobError,
    PermanentChunkError,
    TransientChunkError,
)
from chunk_job.job import ChunkJob, ChunkRef, Decoded, Limits, Transcribed

__all__ = [
    "ChunkJob",
    "ChunkJobError",
    "ChunkRef",
    "Decoded",
    "Limits",
    "PermanentChunkError",
    "Transcribed",
    "TransientChunkError",
]
