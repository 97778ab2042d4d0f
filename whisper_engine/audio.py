"""Decoding any common audio format to 16 kHz mono float32 with PyAV (its own FFmpeg).

Inputs are bytes, a binary file object or a local filesystem path. A path string is opened by
Python and handed to FFmpeg as a file object, so FFmpeg never interprets it as a URL or protocol
(``http:``, ``concat:``...), and only a fixed set of audio demuxers is allowed: playlist formats
such as HLS would otherwise make FFmpeg open further URLs named inside the file.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from whisper_engine.errors import AudioDecodeError, AudioTooLongError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000

# FFmpeg demuxer names (matched against each demuxer's comma-separated aliases). Covers wav,
# flac, mp3, m4a/mp4/aac, ogg/opus, webm/mka and raw ADTS aac.
ALLOWED_DEMUXERS = ("wav", "w64", "flac", "mp3", "mov", "mp4", "m4a", "aac", "ogg", "matroska")

# A stream that decodes to less than this share of its declared duration is reported as
# truncated rather than silently transcribed in part.
_TRUNCATION_TOLERANCE = 0.9
_TRUNCATION_SLACK_S = 0.5

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def duration_of(samples: NDArray[np.float32]) -> float:
    """Seconds of audio in a 16 kHz sample array."""
    return float(samples.shape[0]) / SAMPLE_RATE


def probe_duration(source: AudioSource) -> float | None:
    """The duration the container declares, in seconds, without decoding; None if unknown."""
    with _open_container(source) as container:
        return _declared_duration(container)


def decode_audio(
    source: AudioSource, *, max_duration_s: float | None = None
) -> NDArray[np.float32]:
    """Decode ``source`` to a 16 kHz mono float32 array in [-1, 1].

    Raises AudioDecodeError when the input is empty, corrupt, truncated or has no audio stream,
    and AudioTooLongError when it lasts longer than ``max_duration_s`` (checked on the
    container's declared duration before decoding, and again while decoding).
    """
    import av

    with _open_container(source) as container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise AudioDecodeError(f"no audio stream in the {container.format.name} container")
        declared = _declared_duration(container)
        if max_duration_s is not None and declared is not None and declared > max_duration_s:
            raise AudioTooLongError(declared, max_duration_s)
        max_samples = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE)

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pieces: list[NDArray[np.float32]] = []
        decoded = 0
        try:
            for frame in container.decode(stream):
                # Timestamps from damaged streams can go backwards and make the resampler drop
                # audio; the sample count is all that matters here.
                frame.pts = None
                for out in resampler.resample(frame):
                    decoded = _append(pieces, out, decoded, max_samples, max_duration_s)
            for out in resampler.resample(None):
                decoded = _append(pieces, out, decoded, max_samples, max_duration_s)
        except av.error.FFmpegError as exc:
            at = decoded / SAMPLE_RATE
            raise AudioDecodeError(f"corrupt or truncated data after {at:.2f} s: {exc}") from exc

    if decoded == 0:
        raise AudioDecodeError("no audio samples could be decoded (empty or truncated stream)")
    samples = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    if declared is not None:
        got = decoded / SAMPLE_RATE
        if got < declared * _TRUNCATION_TOLERANCE - _TRUNCATION_SLACK_S:
            raise AudioDecodeError(
                f"truncated: decoded {got:.2f} s of the {declared:.2f} s the container declares"
            )
    if not np.isfinite(samples).all():
        raise AudioDecodeError("decoded samples contain NaN or infinity")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _append(
    pieces: list[NDArray[np.float32]],
    frame: Any,
    decoded: int,
    max_samples: int | None,
    max_duration_s: float | None,
) -> int:
    array = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    decoded += array.shape[0]
    if max_samples is not None and max_duration_s is not None and decoded > max_samples:
        raise AudioTooLongError(decoded / SAMPLE_RATE, max_duration_s, exact=False)
    pieces.append(array)
    return decoded


def _declared_duration(container: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE is microseconds
    for stream in container.streams:
        if stream.type == "audio" and stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return None


@contextmanager
def _open_container(source: AudioSource) -> Iterator[Any]:
    import av

    fileobj, owned = _as_fileobj(source)
    try:
        _check_wav_not_truncated(fileobj)
    except BaseException:
        if owned:
            fileobj.close()
        raise
    options = {"format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    try:
        try:
            container = av.open(fileobj, mode="r", options=options, metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(f"not a recognised audio container: {exc}") from exc
        except (EOFError, OSError, ValueError) as exc:
            # PyAV raises some container-probe failures as plain OSError/ValueError.
            raise AudioDecodeError(f"not a recognised audio container: {exc}") from exc
        try:
            yield container
        finally:
            container.close()
    finally:
        if owned:
            fileobj.close()


def _as_fileobj(source: AudioSource) -> tuple[IO[bytes], bool]:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioDecodeError("empty input (0 bytes)")
        return io.BytesIO(bytes(source)), True
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by _open_container
        except OSError as exc:
            raise AudioDecodeError(f"cannot open {path!r}: {exc.strerror}") from exc
        if os.fstat(handle.fileno()).st_size == 0:
            handle.close()
            raise AudioDecodeError(f"empty file {path!r} (0 bytes)")
        return handle, True
    return source, False


def _check_wav_not_truncated(fileobj: IO[bytes]) -> None:
    """Raise if a RIFF/WAVE header promises more sample data than the input holds.

    FFmpeg decodes a cut WAV file without complaint and derives its duration from the file size,
    so the length check in decode_audio cannot see it; the header's data size can.
    """
    if not fileobj.seekable():
        return
    start = fileobj.tell()
    try:
        header = fileobj.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        end = fileobj.seek(0, io.SEEK_END)
        offset = start + 12
        while offset + 8 <= end:
            fileobj.seek(offset)
            chunk = fileobj.read(8)
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mark streams written before their length was known.
                if size not in (0, 0xFFFFFFFF) and offset + 8 + size > end:
                    have = end - offset - 8
                    raise AudioDecodeError(
                        f"truncated WAV: header declares {size} bytes of samples, file holds {have}"
                    )
                return
            offset += 8 + size + (size & 1)
    finally:
        fileobj.seek(start)
