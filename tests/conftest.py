"""Shared session fixtures: the real offline model (prepared once) and espeak-ng speech."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.speech import (
    ENGLISH_TEXT,
    SWEDISH_TEXT,
    espeak_available,
    synthesize,
)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default model; the first run installs two pinned wheels from PyPI and converts them."""
    from whisper_convert.prepare import prepare_default_model

    return prepare_default_model()


@pytest.fixture(scope="session")
def ct2_package_dir(model_dir: Path) -> Path:
    """The installed CTranslate2 wheels' content as one directory (model.bin in two parts)."""
    from whisper_convert.prepare import WHISPER_BASE_WHEELS, default_cache_dir

    packages = default_cache_dir() / "model-packages" / "whisper-base"
    return packages / WHISPER_BASE_WHEELS[0].package_dir / "data"


@pytest.fixture(scope="session")
def ct2_model_dir(ct2_package_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The original CTranslate2 checkpoint with model.bin joined, as faster-whisper needs it."""
    from whisper_convert.prepare import WHISPER_BASE_WHEELS

    directory = tmp_path_factory.mktemp("ct2-whisper-base")
    part2 = ct2_package_dir.parent.parent / WHISPER_BASE_WHEELS[1].package_dir / "data"
    with (directory / "model.bin").open("wb") as joined:
        for part in (ct2_package_dir / "model.bin.part1", part2 / "model.bin.part2"):
            joined.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (directory / name).symlink_to(ct2_package_dir / name)
    return directory


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> Iterator[object]:
    from whisper_engine.transcriber import WhisperEngine

    loaded = WhisperEngine.load(model_dir, device="cpu")
    yield loaded
    loaded.unload()


def _speech(text: str, voice: str) -> np.ndarray:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (scripts/ci-tools.sh installs it)")
    return synthesize(text, voice)


@pytest.fixture(scope="session")
def english_speech() -> np.ndarray:
    return _speech(ENGLISH_TEXT, "en")


@pytest.fixture(scope="session")
def swedish_speech() -> np.ndarray:
    return _speech(SWEDISH_TEXT, "sv")
