"""Decoding: every common format to 16 kHz mono float32, and typed errors for bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from tests.support.speech import encode
from whisper_engine.audio import SAMPLE_RATE, decode_audio, probe_duration
from whisper_engine.errors import AudioDecodeError, AudioTooLongError

FORMATS = ["wav", "flac", "mp3", "m4a", "ogg", "opus", "webm"]


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """3 s of a 440 Hz tone, not silent so lossy codecs keep it."""
    t = np.arange(3 * SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def encoded(tone: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("formats")
    return {ext: encode(tone, directory / f"tone.{ext}") for ext in FORMATS}


@pytest.mark.parametrize("ext", FORMATS)
def test_every_format_decodes_to_16k_mono_float32(ext: str, encoded: dict[str, Path]) -> None:
    samples = decode_audio(encoded[ext])
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(samples.shape[0] / SAMPLE_RATE - 3.0) < 0.1
    assert 0.15 < float(np.sqrt(np.mean(samples**2))) < 0.3  # the tone survived


def test_bytes_path_and_file_object_decode_alike(encoded: dict[str, Path]) -> None:
    path = encoded["mp3"]
    from_path = decode_audio(path)
    np.testing.assert_array_equal(decode_audio(path.read_bytes()), from_path)
    np.testing.assert_array_equal(decode_audio(io.BytesIO(path.read_bytes())), from_path)
    np.testing.assert_array_equal(decode_audio(str(path)), from_path)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path: Path) -> None:
    import av

    path = tmp_path / "stereo.wav"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=44100, layout="stereo")
        data = np.zeros((1, 44100 * 2), dtype=np.int16)  # packed s16: interleaved L R
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    samples = decode_audio(path)
    assert abs(samples.shape[0] - SAMPLE_RATE) < 200


def test_empty_input_is_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_audio(b"")
    empty = tmp_path / "empty.mp3"
    empty.touch()
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_audio(empty)


@pytest.mark.parametrize(
    "payload",
    [b"this is plain text, not audio at all" * 20, bytes(range(256)) * 40, b"\x89PNG\r\n\x1a\n"],
    ids=["text", "binary-noise", "png-header"],
)
def test_non_audio_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(payload)


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac", "m4a", "webm"])
def test_truncated_file_is_a_decode_error(ext: str, encoded: dict[str, Path]) -> None:
    data = encoded[ext].read_bytes()
    with pytest.raises(AudioDecodeError) as caught:
        decode_audio(data[: len(data) // 2])
    assert caught.value.reason


@pytest.mark.parametrize("ext", ["flac", "m4a", "webm"])
def test_corrupt_data_is_a_decode_error(ext: str, encoded: dict[str, Path]) -> None:
    data = bytearray(encoded[ext].read_bytes())
    garbage = np.random.default_rng(1).integers(0, 256, size=len(data) // 3, dtype=np.uint8)
    data[16 : 16 + garbage.size] = garbage.tobytes()
    with pytest.raises(AudioDecodeError):
        decode_audio(bytes(data))


def test_playlist_formats_are_refused_not_followed() -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/a.ts\n"
    with pytest.raises(AudioDecodeError):
        decode_audio(playlist)


def test_a_url_given_as_path_is_only_a_path() -> None:
    with pytest.raises(AudioDecodeError, match="cannot open"):
        decode_audio("http://127.0.0.1:9/chunk.mp3")


def test_duration_cap_is_checked_before_decoding(encoded: dict[str, Path]) -> None:
    assert probe_duration(encoded["mp3"]) == pytest.approx(3.0, abs=0.1)
    with pytest.raises(AudioTooLongError) as caught:
        decode_audio(encoded["mp3"], max_duration_s=1.0)
    assert caught.value.duration_s == pytest.approx(3.0, abs=0.1)
    assert decode_audio(encoded["mp3"], max_duration_s=10.0).shape[0] > 0
