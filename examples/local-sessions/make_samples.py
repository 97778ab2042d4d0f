"""Regenerate the sample sessions of `smart-router local` from sessions.json (espeak-ng + PyAV).

Run from the repository root: ``.venv/bin/python examples/local-sessions/make_samples.py``.
The audio is committed; this script documents how it was made and remakes it byte-for-byte
close (espeak-ng and libopus versions may differ slightly).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.support.speech import encode, synthesize  # noqa: E402


def main() -> None:
    catalogue = json.loads((HERE / "sessions.json").read_text(encoding="utf-8"))
    for session in catalogue["sessions"]:
        folder = HERE / session["session_id"]
        folder.mkdir(exist_ok=True)
        for chunk in session["chunks"]:
            samples = synthesize(chunk["text"], session["voice"], lead_s=0.3, tail_s=0.3)
            path = encode(samples, folder / chunk["file"])
            print(f"{path.relative_to(HERE)}: {len(samples) / 16000:.1f} s")


if __name__ == "__main__":
    main()
