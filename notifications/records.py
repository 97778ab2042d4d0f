"""Where undeliverable notifications and given-up chunks are recorded in S3.

Under the session's transcript prefix, in a ``failures/`` folder (outside the key grammar of
docs/design.md §2, so listings of chunk transcripts skip it; outside the audio prefix, so the
router is never triggered by it):

- ``{transcript_prefix}{session}/failures/chunk-{index:04d}.json``: a :class:`ChunkFailedDetail`
  for a chunk given up on (the latest reason; ``smart-router status`` shows it);
- ``{transcript_prefix}{session}/failures/delivery-{event_id}-{target}.json``: a
  :class:`DeliveryFailureRecord` for an event or webhook not delivered after its retries, with
  the detail to re-send by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from transcript_contracts.keys import KeyLayout

FAILURES_DIR: Final = "failures/"
_CHUNK_RE: Final = re.compile(r"^chunk-(?P<index>[0-9]{4,9})\.json$")
_DELIVERY_RE: Final = re.compile(
    r"^delivery-(?P<event_id>[A-Za-z0-9_-]{1,64})-(?P<target>eventbridge|webhook|callback)\.json$"
)


@dataclass(frozen=True, slots=True)
class ChunkFailureName:
    index: int


@dataclass(frozen=True, slots=True)
class DeliveryFailureName:
    event_id: str
    target: str


def failures_prefix(layout: KeyLayout, session_id: str) -> str:
    return f"{layout.transcript_session_prefix(session_id)}{FAILURES_DIR}"


def chunk_failure_key(layout: KeyLayout, session_id: str, index: int) -> str:
    return f"{failures_prefix(layout, session_id)}chunk-{index:04d}.json"


def delivery_failure_key(layout: KeyLayout, session_id: str, event_id: str, target: str) -> str:
    return f"{failures_prefix(layout, session_id)}delivery-{event_id}-{target}.json"


def parse_failure_name(name: str) -> ChunkFailureName | DeliveryFailureName | None:
    """What a name under ``failures/`` records, None for anything else."""
    m = _CHUNK_RE.match(name)
    if m:
        return ChunkFailureName(int(m["index"]))
    m = _DELIVERY_RE.match(name)
    if m:
        return DeliveryFailureName(m["event_id"], m["target"])
    return None
