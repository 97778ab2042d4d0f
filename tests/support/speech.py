"""Test speech: espeak-ng renders known text; PyAV re-encodes it; a small WER function scores it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from smart_router.evaluation import normalise, wer
from whisper_engine.audio import SAMPLE_RATE, decode_audio

ENGLISH_TEXT = (
    "The weather is nice today, so we decided to take a long walk in the park. "
    "After lunch, my sister called to ask about our plans for the weekend. "
    "We talked about the new library that opened near the train station."
)
SWEDISH_TEXT = (
    "Vädret är fint i dag, så vi bestämde oss för att ta en lång promenad i parken. "
    "Efter lunch ringde min syster och frågade om våra planer för helgen. "
    "Vi pratade om det nya biblioteket som har öppnat nära tågstationen."
)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: str, *, lead_s: float = 0.5, tail_s: float = 0.5) -> np.ndarray:
    """16 kHz float32 speech for ``text``, with silence around it."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        samples = decode_audio(wav)
    lead = np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(tail_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([lead, samples, tail])


_CONTAINERS = {
    # extension: (container format, codec, codec sample rate)
    "wav": ("wav", "pcm_s16le", 16000),
    "flac": ("flac", "flac", 16000),
    "mp3": ("mp3", "libmp3lame", 16000),
    "m4a": ("ipod", "aac", 16000),
    "ogg": ("ogg", "libopus", 48000),
    "opus": ("opus", "libopus", 48000),
    "webm": ("webm", "libopus", 48000),
}


def encode(samples: np.ndarray, path: Path) -> Path:
    """Write 16 kHz float32 ``samples`` to ``path`` in the format its extension names."""
    import av

    fmt, codec, rate = _CONTAINERS[path.suffix.lstrip(".")]
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=rate, layout="mono")
        sample_format = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_format, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        fifo = av.AudioFifo()
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            fifo.write(resampled)
        frame_size = stream.codec_context.frame_size or 1024
        while fifo.samples:
            chunk = fifo.read(frame_size, partial=True)
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


__all__ = ["ENGLISH_TEXT", "SWEDISH_TEXT", "encode", "normalise", "synthesize", "wer"]
