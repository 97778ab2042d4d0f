"""The chaos run at a small size: faults everywhere, and still nothing lost or duplicated."""

from __future__ import annotations

from pathlib import Path

from smart_router.local.chaos import ChaosOptions, run_chaos


def test_small_chaos_run_loses_and_duplicates_nothing(model_dir: Path, tmp_path: Path) -> None:
    options = ChaosOptions(
        chunks=12,
        sessions=3,
        corrupt=1,
        duplicate_rate=0.3,
        server_kill_every_s=(4.0, 8.0),
        upload_rate_per_s=1.0,
        seed=11,
    )
    report = run_chaos(options, model_dir, tmp_path)
    print("\n".join(report.lines()))

    assert report.uploaded == 12
    assert report.lost == []
    assert report.duplicated == []
    assert report.sessions_stitched_twice == []
    assert report.complete_not_stitched == []
    assert report.dlq_is_exactly_corrupt, report.dead_letters
    assert len(report.dead_letters) == 1
    assert report.transcribed == 11
    assert report.sessions_complete == report.sessions_stitched_once == 2
    # The faults did happen: the run is not a quiet one that passes by luck.
    assert report.injected.get("server_kills", 0) >= 1
    assert report.injected.get("worker_kills", 0) == 1
    assert report.injected.get("duplicate_deliveries", 0) >= 1
    assert report.ok
