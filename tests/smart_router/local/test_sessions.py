from __future__ import annotations

from pathlib import Path

import pytest

from smart_router.errors import SessionInputError
from smart_router.local.sessions import sample_sessions, session_from_files
from transcript_contracts.keys import KeyLayout


def test_samples_are_shipped_with_their_text() -> None:
    sessions = {s.session_id: s for s in sample_sessions()}
    assert set(sessions) == {"demo-sv", "demo-en"}
    for session in sessions.values():
        assert len(session.chunks) == 3
        assert all(c.path.is_file() and c.path.stat().st_size > 10_000 for c in session.chunks)
        assert session.reference_text
        manifest = session.manifest()
        assert manifest.chunk_count == 3
        assert manifest.language == session.language


def test_files_become_chunks_in_the_given_order(tmp_path: Path) -> None:
    files = [tmp_path / "b.mp3", tmp_path / "a.wav"]
    for f in files:
        f.write_bytes(b"x")
    session = session_from_files("my-talk", files, "sv")
    layout = KeyLayout()
    assert [session.chunk_key(layout, c) for c in session.chunks] == [
        "audio/my-talk/chunk-0000.mp3",
        "audio/my-talk/chunk-0001.wav",
    ]
    assert session.reference_text is None


@pytest.mark.parametrize(
    ("name", "filename", "message"),
    [
        ("ok", "notes.txt", "extension 'txt' is not one of"),
        ("bad name!", "a.wav", "session name 'bad name!'"),
        ("ok", None, "no such file"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    tmp_path: Path, name: str, filename: str | None, message: str
) -> None:
    path = tmp_path / (filename or "missing.wav")
    if filename:
        path.write_bytes(b"x")
    with pytest.raises(SessionInputError, match=message):
        session_from_files(name, [path], None)
