"""The router's import closure: no torch, transformers, fastapi or numpy, ever; and the handler
module imports without settings or AWS (settings and clients come on the first invocation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "transformers", "fastapi", "numpy")


def test_handler_imports_nothing_heavy_and_needs_no_settings() -> None:
    code = (
        "import json, sys; import router.handler; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"BUCKET_NAME", "QUEUE_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
