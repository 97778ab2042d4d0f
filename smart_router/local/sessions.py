"""Sessions to upload: the samples shipped in examples/local-sessions, or the user's files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from smart_router.errors import SessionInputError
from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import AUDIO_EXTENSIONS, KeyLayout, check_session_id
from transcript_contracts.models import Manifest

SAMPLES_DIR: Final = Path(__file__).resolve().parents[2] / "examples" / "local-sessions"


@dataclass(frozen=True)
class LocalChunk:
    index: int
    path: Path
    # The spoken text, when known (samples): the end of the run reports the WER against it.
    text: str | None = None


@dataclass(frozen=True)
class LocalSession:
    session_id: str
    language: str | None
    chunks: tuple[LocalChunk, ...]

    def manifest(self) -> Manifest:
        return Manifest(
            session_id=self.session_id, chunk_count=len(self.chunks), language=self.language
        )

    def chunk_key(self, layout: KeyLayout, chunk: LocalChunk) -> str:
        return layout.audio_chunk(self.session_id, chunk.index, chunk.path.suffix.lstrip("."))

    @property
    def reference_text(self) -> str | None:
        texts = [c.text for c in self.chunks]
        if any(t is None for t in texts):
            return None
        return " ".join(t for t in texts if t)


def sample_sessions(samples_dir: Path = SAMPLES_DIR) -> list[LocalSession]:
    catalogue = json.loads((samples_dir / "sessions.json").read_text(encoding="utf-8"))
    sessions = []
    for entry in catalogue["sessions"]:
        folder = samples_dir / entry["session_id"]
        chunks = tuple(
            LocalChunk(i, folder / chunk["file"], chunk["text"])
            for i, chunk in enumerate(entry["chunks"])
        )
        sessions.append(LocalSession(entry["session_id"], entry.get("language"), chunks))
    return sessions


def session_from_files(session_id: str, files: list[Path], language: str | None) -> LocalSession:
    """The user's files, chunked in the given order (chunk 0 is the first file)."""
    if not files:
        raise SessionInputError("give at least one audio file")
    chunks = []
    for index, path in enumerate(files):
        if not path.is_file():
            raise SessionInputError(f"{path}: no such file")
        extension = path.suffix.lower().lstrip(".")
        if extension not in AUDIO_EXTENSIONS:
            raise SessionInputError(
                f"{path}: extension {extension or '(none)'!r} is not one of "
                f"{', '.join(sorted(AUDIO_EXTENSIONS))}"
            )
        chunks.append(LocalChunk(index, path))
    session = LocalSession(session_id, language, tuple(chunks))
    try:
        check_session_id(session_id)
    except KeyGrammarError as exc:
        raise SessionInputError(f"session name {session_id!r}: {exc}") from exc
    return session
