from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.transcript_contracts.conftest import make_chunk
from transcript_contracts.formats import format_timestamp, render, to_srt, to_vtt
from transcript_contracts.models import Manifest, SessionTranscript, TranscriptSegment
from transcript_contracts.stitcher import stitch


def session_past_one_hour() -> SessionTranscript:
    m = Manifest(session_id="s1", chunk_count=3)
    chunks = [
        make_chunk(0, 3599.5, [(3598.0, 3599.25, "Hej & välkommen <alla>")]),
        make_chunk(1, 30.0, []),  # silence: no cue, but its time counts
        make_chunk(2, 10.0, [(0.0, 2.0, "så\nhär --> går\n\ndet"), (2.0, 3.0, "   ")]),
    ]
    return stitch(m, chunks)


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (1.2345, "00:00:01,234", "00:00:01.234"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3600, "01:00:00,000", "01:00:00.000"),
        (3723.5, "01:02:03,500", "01:02:03.500"),
        (100 * 3600 + 1, "100:00:01,000", "100:00:01.000"),
        (-0.001, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, decimal=".") == vtt


def test_srt_past_one_hour_with_empty_chunks_and_unicode() -> None:
    srt = render(session_past_one_hour(), "srt").decode("utf-8")
    assert srt == (
        "1\n00:59:58,000 --> 00:59:59,250\nHej & välkommen <alla>\n"
        "\n"
        "2\n01:00:29,500 --> 01:00:31,500\nså här -> går det\n"
    )


def test_vtt_escapes_markup_and_has_header() -> None:
    vtt = render(session_past_one_hour(), "vtt").decode("utf-8")
    assert vtt == (
        "WEBVTT\n"
        "\n"
        "00:59:58.000 --> 00:59:59.250\nHej &amp; välkommen &lt;alla&gt;\n"
        "\n"
        "01:00:29.500 --> 01:00:31.500\nså här --&gt; går det\n"
    )


def test_txt_one_line_per_segment() -> None:
    txt = render(session_past_one_hour(), "txt").decode("utf-8")
    assert txt == "Hej & välkommen <alla>\nså här --> går det\n"


def test_empty_transcript_renders_empty_but_valid() -> None:
    m = Manifest(session_id="s1", chunk_count=1)
    session = stitch(m, [make_chunk(0, 5.0, [])])
    assert render(session, "txt") == b""
    assert render(session, "srt") == b""
    assert render(session, "vtt") == b"WEBVTT\n"
    assert json.loads(render(session, "json"))["segments"] == []


def test_json_is_utf8_not_escaped_and_round_trips() -> None:
    session = session_past_one_hour()
    raw = render(session, "json")
    assert "välkommen".encode() in raw
    assert raw.endswith(b"\n")
    assert SessionTranscript.model_validate_json(raw) == session


def test_chunk_transcripts_render_too() -> None:
    chunk = make_chunk(0, 5.0, [(0.0, 1.0, "ett")])
    assert render(chunk, "srt") == b"1\n00:00:00,000 --> 00:00:01,000\nett\n"


@given(
    st.lists(
        st.tuples(st.floats(0, 1e6), st.floats(0, 100), st.text(max_size=30)),
        max_size=10,
    )
)
def test_cue_structure_survives_any_text(raw: list[tuple[float, float, str]]) -> None:
    segments = [TranscriptSegment(start=a, end=a + d, text=t) for a, d, t in raw]
    srt = to_srt(segments)
    cues = [b for b in srt.split("\n\n") if b]
    assert len(cues) == sum(1 for s in segments if s.text.split())
    for n, cue in enumerate(cues, start=1):
        lines = cue.strip("\n").split("\n")
        assert len(lines) == 3 and lines[0] == str(n) and " --> " in lines[1]
    vtt = to_vtt(segments)
    assert vtt.startswith("WEBVTT\n")
    for cue in vtt.split("\n\n")[1:]:
        assert len(cue.strip("\n").split("\n")) == 2
