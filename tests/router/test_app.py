from __future__ import annotations

from typing import Any

import pytest
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER

from router.app import fast_timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-21T19:15:26.000Z",
        "2026-11-21T19:15:26Z",
        "2026-11-21T19:15:26+02:00",
        "2026-11-21T19:15:26.123456",
        "Sat, 21 Nov 2026 19:15:26 GMT",
        1795288729.387,
        1795288729,
        "1795288729",
    ],
)
def test_fast_timestamps_match_botocore(value: Any) -> None:
    fast, slow = fast_timestamp(value), DEFAULT_TIMESTAMP_PARSER(value)
    assert fast == slow
    assert (fast.tzinfo is None) == (slow.tzinfo is None)
