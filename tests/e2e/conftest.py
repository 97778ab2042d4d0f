"""One local pipeline (embedded moto, the real server on the real model, the router) shared by
the end-to-end tests of a module; each test uses its own session ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from smart_router.local.pipeline import LocalPipeline, PipelineConfig
from smart_router.local.sessions import LocalSession, sample_sessions


@pytest.fixture(scope="module")
def pipeline(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    # A chunk whose manifest has not arrived yet is transcribed in the default language; 'auto'
    # (detection works on the English samples) keeps the manifest-last test about ordering.
    config = PipelineConfig(
        work_dir=tmp_path_factory.mktemp("local-run"), model_dir=model_dir, language="auto"
    )
    with LocalPipeline(config) as running:
        yield running


def english_session(session_id: str) -> LocalSession:
    """The English sample session (three espeak chunks, known text) under another id."""
    sample = next(s for s in sample_sessions() if s.session_id == "demo-en")
    return replace(sample, session_id=session_id)
