"""The server and the worker import only what inference needs: never the conversion tooling."""

from __future__ import annotations

import subprocess
import sys

RUNTIME_MODULES = (
    "server.app",
    "server.main",
    "server.runtime",
    "batch_worker.main",
    "whisper_engine",
    "whisper_engine.transcriber",
    "model_registry.resolve",
)


def test_runtime_modules_never_import_the_converter() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {RUNTIME_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'whisper_convert'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_check_would_see_an_import() -> None:
    code = "import sys, whisper_convert.ct2; print('whisper_convert.ct2' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout.strip() == "True", result.stderr
