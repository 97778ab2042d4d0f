"""End to end on the real engine (Whisper base, CPU) and real speech, against moto."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batch_worker.worker import EXIT_OK
from tests.batch_worker.support import LAYOUT, Aws, RecordingEvents, settings, worker
from tests.support.speech import ENGLISH_TEXT, encode, wer


def encoded(samples: np.ndarray, ext: str, tmp_path: Path, name: str) -> bytes:
    return encode(samples, tmp_path / f"{name}.{ext}").read_bytes()


@pytest.mark.slow
def test_drains_sessions_with_the_real_engine(
    aws: Aws, engine: object, english_speech: np.ndarray, tmp_path: Path
) -> None:
    # Four pieces of about 4 s; the cuts may split words, as real uploads do.
    pieces = np.array_split(english_speech, 4)
    aws.put_manifest("alpha", 2)
    aws.put_chunk("alpha", 0, encoded(pieces[0], "wav", tmp_path, "a0"))
    aws.put_chunk("alpha", 1, encoded(pieces[1], "mp3", tmp_path, "a1"), ext="mp3")
    aws.put_chunk("beta", 0, encoded(pieces[2], "flac", tmp_path, "b0"), ext="flac")
    aws.put_chunk("beta", 1, encoded(pieces[3], "wav", tmp_path, "b1"))
    aws.put_manifest("beta", 2)
    aws.put_chunk("gamma", 0, encoded(pieces[0], "wav", tmp_path, "g0"))  # no manifest yet

    events = RecordingEvents()
    run = worker(aws, engine, settings(aws), events=events)
    assert run.run() == EXIT_OK

    assert run.stats.transcribed == 5 and run.stats.failed == 0
    for session, count in (("alpha", 2), ("beta", 2), ("gamma", 1)):
        assert len(aws.keys(f"transcripts/{session}/chunk-")) == count
    assert sorted(o.session_id for o in events.stitched) == ["alpha", "beta"]
    assert LAYOUT.session_transcript("gamma") not in aws.keys("transcripts/gamma/")
    assert aws.counts() == (0, 0)

    alpha = aws.json(LAYOUT.session_transcript("alpha"))
    beta = aws.json(LAYOUT.session_transcript("beta"))
    heard = f"{alpha['text']} {beta['text']}"
    # Split words at the cuts cost a little; the whole must still read as the text.
    assert wer(ENGLISH_TEXT, heard) < 0.35, heard
    first = aws.json(LAYOUT.chunk_transcript("alpha", 0))
    assert first["model"] and first["duration_s"] == pytest.approx(len(pieces[0]) / 16_000, 0.05)
    # The second chunk's segments are shifted by the first chunk's real duration.
    assert alpha["segments"][-1]["start"] >= first["duration_s"] - 0.5
