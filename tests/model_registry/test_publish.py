"""`model publish`: create-only uploads, content-addressed versions, one moving pointer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from model_registry.errors import PublishError
from model_registry.manifest import ModelManifest
from model_registry.publish import plan, publish
from tests.model_registry.conftest import BUCKET, MODEL_URI, object_versions, write_tiny_model

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "models/tiny-whisper/"


def _latest(s3: S3Client) -> dict[str, str]:
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}latest.json")["Body"].read()
    content: dict[str, str] = json.loads(body)
    return content


def test_publish_uploads_files_then_manifest_then_pointer(s3: S3Client, tiny_model: Path) -> None:
    result = publish(tiny_model, MODEL_URI, s3=s3, source="unit test")
    version = result.manifest.version
    assert result.location.uri == f"{MODEL_URI}{version}/"
    assert set(result.uploaded) == {
        "config.json",
        "ct2/model.bin",
        "generation_config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
    }
    assert result.manifest_written and result.pointer_updated
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"{PREFIX}{version}/files/ct2/model.bin" in keys
    assert not any(".cache" in key for key in keys)
    raw = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{version}/manifest.json")["Body"].read()
    stored = ModelManifest.from_bytes(raw, what="manifest")
    assert stored == result.manifest and stored.source == "unit test"
    assert {f.path: f.size for f in stored.files}["model.safetensors"] == 4096
    assert _latest(s3)["version"] == version


def test_publishing_the_same_directory_again_writes_nothing(s3: S3Client, tiny_model: Path) -> None:
    first = publish(tiny_model, MODEL_URI, s3=s3)
    before = object_versions(s3)
    again = publish(tiny_model, MODEL_URI, s3=s3)
    assert again.changed_nothing and again.uploaded == ()
    assert len(again.present) == len(first.manifest.files)
    assert object_versions(s3) == before


def test_a_changed_file_is_a_new_version_never_an_overwrite(
    s3: S3Client, tiny_model: Path, tmp_path: Path
) -> None:
    first = publish(tiny_model, MODEL_URI, s3=s3)
    old_keys = {key for key, _ in object_versions(s3) if first.manifest.version in key}
    changed = write_tiny_model(tmp_path / "changed", weights=b"\x07" * 4096)
    second = publish(changed, MODEL_URI, s3=s3)
    assert second.manifest.version != first.manifest.version
    versions = object_versions(s3)
    # Each object of the first version still has exactly one S3 version: nothing overwritten.
    for key in old_keys:
        assert [k for k, _ in versions].count(key) == 1
    assert _latest(s3)["version"] == second.manifest.version
    # Publishing the old directory again only moves the pointer back (a rollback).
    back = publish(tiny_model, MODEL_URI, s3=s3)
    assert back.uploaded == () and not back.manifest_written and back.pointer_updated
    assert _latest(s3)["version"] == first.manifest.version


def test_an_interrupted_publish_is_completed_by_the_next_one(
    s3: S3Client, tiny_model: Path
) -> None:
    location, manifest = plan(tiny_model, MODEL_URI)
    version = manifest.version
    # As if the first run died after one file: no manifest, no pointer.
    s3.put_object(
        Bucket=BUCKET,
        Key=location.file_key(version, "config.json"),
        Body=(tiny_model / "config.json").read_bytes(),
    )
    result = publish(tiny_model, MODEL_URI, s3=s3)
    assert "config.json" in result.present and "config.json" not in result.uploaded
    assert len(result.uploaded) == len(manifest.files) - 1 and result.manifest_written


def test_an_object_with_other_content_is_never_overwritten(s3: S3Client, tiny_model: Path) -> None:
    location, manifest = plan(tiny_model, MODEL_URI)
    key = location.file_key(manifest.version, "model.safetensors")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"damaged")
    with pytest.raises(PublishError, match=r"model\.safetensors exists with other content"):
        publish(tiny_model, MODEL_URI, s3=s3)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"damaged"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}latest.json")


def test_publish_refuses_a_version_address_and_a_bad_directory(
    s3: S3Client, tiny_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(PublishError, match="names a version"):
        publish(tiny_model, f"{MODEL_URI}v-0123456789abcdef/", s3=s3)
    with pytest.raises(PublishError, match="not a directory"):
        publish(tmp_path / "absent", MODEL_URI, s3=s3)


def test_no_latest_leaves_the_pointer_alone(s3: S3Client, tiny_model: Path) -> None:
    result = publish(tiny_model, MODEL_URI, s3=s3, set_latest=False)
    assert result.manifest_written and not result.pointer_updated
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}latest.json")
