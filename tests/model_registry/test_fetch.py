"""Loading from the registry: download, verify every file, reuse a verified cache, refuse damage
with the file named, never fall back to another version."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from model_registry import cache as cache_module
from model_registry.errors import ManifestError, ModelFetchError, ModelFileError
from model_registry.fetch import fetch_model
from model_registry.publish import PublishResult, publish
from tests.model_registry.conftest import BUCKET, MODEL_URI, write_tiny_model
from whisper_engine.errors import ModelLoadError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def published(s3: S3Client, tiny_model: Path) -> PublishResult:
    return publish(tiny_model, MODEL_URI, s3=s3)


def _key(result: PublishResult, path: str) -> str:
    return result.location.file_key(result.manifest.version, path)


def test_fetch_downloads_and_verifies_every_file(
    s3: S3Client, published: PublishResult, tiny_model: Path, tmp_path: Path
) -> None:
    local = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path / "cache")
    assert local.version == published.manifest.version and not local.from_cache
    assert local.downloaded_bytes == published.manifest.total_size
    # The leaf directory carries the model's name: the engine reports it as the model.
    assert local.path.name == "tiny-whisper"
    for entry in published.manifest.files:
        assert (local.path / entry.path).read_bytes() == (tiny_model / entry.path).read_bytes()
    assert sorted(p.name for p in local.path.parent.iterdir()) == [
        ".lock",
        "manifest.json",
        "tiny-whisper",
        "verified.json",
    ]


def test_a_verified_cache_is_reused_without_downloading(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    for entry in published.manifest.files:  # from now on a download would fail
        s3.delete_object(Bucket=BUCKET, Key=_key(published, entry.path))
    again = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    assert again.from_cache and again.downloaded_bytes == 0
    assert again.version == published.manifest.version


def test_a_pinned_cached_version_starts_without_s3(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    pinned = published.location.uri
    fetch_model(pinned, s3=s3, cache_dir=tmp_path)

    class NoS3:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"S3 was called: {name}")

    local = fetch_model(pinned, s3=NoS3(), cache_dir=tmp_path)  # type: ignore[arg-type]
    assert local.from_cache and local.version == published.manifest.version


def test_a_corrupted_file_is_refused_with_its_name(
    s3: S3Client, published: PublishResult, tiny_model: Path, tmp_path: Path
) -> None:
    data = bytearray((tiny_model / "model.safetensors").read_bytes())
    data[100] ^= 0xFF  # same size, one byte altered
    s3.put_object(Bucket=BUCKET, Key=_key(published, "model.safetensors"), Body=bytes(data))
    with pytest.raises(ModelFileError, match=r"model file model\.safetensors: sha256 .* altered"):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    _assert_nothing_usable(tmp_path, published, "model.safetensors")


def test_a_missing_file_is_refused_with_its_name(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    s3.delete_object(Bucket=BUCKET, Key=_key(published, "ct2/model.bin"))
    with pytest.raises(ModelFileError, match=r"model file ct2/model\.bin: missing"):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    _assert_nothing_usable(tmp_path, published, "ct2/model.bin")


def test_a_truncated_object_is_refused_with_its_name(
    s3: S3Client, published: PublishResult, tiny_model: Path, tmp_path: Path
) -> None:
    head = (tiny_model / "model.safetensors").read_bytes()[:1000]
    s3.put_object(Bucket=BUCKET, Key=_key(published, "model.safetensors"), Body=head)
    with pytest.raises(
        ModelFileError, match=r"model file model\.safetensors: .* is 1000 bytes, .* truncated"
    ):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)


def test_a_partial_publish_without_manifest_is_refused(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    s3.delete_object(Bucket=BUCKET, Key=published.location.manifest_key(published.manifest.version))
    with pytest.raises(ManifestError, match=r"manifest\.json does not exist: .* never completely"):
        fetch_model(published.location.uri, s3=s3, cache_dir=tmp_path)


def test_an_altered_manifest_is_refused(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    key = published.location.manifest_key(published.manifest.version)
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    doc["files"][0]["size"] += 1
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())
    with pytest.raises(ManifestError, match="altered"):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)


def test_nothing_published_is_a_load_error(s3: S3Client, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"latest\.json does not exist") as caught:
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    # The server and the worker treat registry failures as the engine's load failures.
    assert isinstance(caught.value, ModelLoadError)


def test_a_damaged_cache_is_repaired_from_the_registry(
    s3: S3Client, published: PublishResult, tiny_model: Path, tmp_path: Path
) -> None:
    local = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    (local.path / "model.safetensors").write_bytes(b"short")
    (local.path / "pytorch_model.bin").write_bytes(b"stray")  # would be loaded as well
    again = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    assert not again.from_cache and again.downloaded_bytes == 4096
    assert (local.path / "model.safetensors").read_bytes() == (
        tiny_model / "model.safetensors"
    ).read_bytes()
    assert not (local.path / "pytorch_model.bin").exists()


def test_a_new_latest_version_replaces_the_cached_one(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    old = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    newer = publish(write_tiny_model(tmp_path / "newer", weights=b"\x09" * 4096), MODEL_URI, s3=s3)
    new = fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)
    assert new.version == newer.manifest.version != old.version
    assert not old.path.parent.exists()  # the old version was pruned


def test_a_cache_without_room_fails_before_downloading(
    s3: S3Client, published: PublishResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**6, 10**6, 1000))
    with pytest.raises(ModelFetchError, match="GB free; the model needs"):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path)


def _assert_nothing_usable(cache_dir: Path, published: PublishResult, path: str) -> None:
    """No verified marker, and the bad file never reached the model directory."""
    entry = cache_module.version_dir(cache_dir, published.location, published.manifest.version)
    assert not entry.marker.exists()
    assert not (entry.model_dir / path).exists()
    assert not any(entry.incoming.glob("*")) if entry.incoming.exists() else True


def test_a_dropped_connection_is_retried_then_named(
    s3: S3Client, published: PublishResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_registry import fetch as fetch_module

    real_stream = fetch_module._stream
    failures = {"model.safetensors": 1}

    def flaky(s3: Any, bucket: str, key: str, item: Any, partial: Path) -> str:
        if failures.get(item.path, 0) > 0:
            failures[item.path] -= 1
            raise OSError("connection reset by peer")
        return real_stream(s3, bucket, key, item, partial)

    monkeypatch.setattr(fetch_module, "_stream", flaky)
    monkeypatch.setattr("model_registry.fetch.time.sleep", lambda _s: None)
    assert fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path / "a").downloaded_bytes > 0
    failures["model.safetensors"] = fetch_module.DOWNLOAD_ATTEMPTS
    with pytest.raises(ModelFileError, match=r"model\.safetensors: download .* failed 3 times"):
        fetch_model(MODEL_URI, s3=s3, cache_dir=tmp_path / "b")
