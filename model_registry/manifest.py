"""The manifest of one model version: every file's path, size and sha256, plus what the model is.

A manifest's ``version`` is ``v-`` + the first 16 hex digits of the sha256 of its own canonical
content (everything but ``version``), so the same directory always yields the same version and
any changed byte yields another one. Readers recompute it: an altered manifest does not verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from model_registry.errors import ManifestError, PublishError
from model_registry.uri import check_name, check_version
from transcript_contracts.language import is_language_code
from transcript_contracts.validation import describe_validation_error

MANIFEST_SCHEMA_VERSION: Final = 1
HASH_CHUNK_BYTES: Final = 8 * 1024 * 1024
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
# The converter's completion marker (whisper_convert.ct2.COMPLETE_MARKER); read as plain JSON so
# that this package never imports the converter.
CONVERSION_MARKER: Final = ".conversion-complete.json"

_PATH_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9_.+-]{1,255}$")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_WEIGHT_FILES: Final = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def check_file_path(path: str) -> str:
    """A manifest path becomes a file under the cache directory: relative, '/'-separated, no
    empty, '.' or '..' segment, a strict character set. Anything else is refused, not cleaned."""
    segments = path.split("/")
    if len(path) > 1024 or any(
        s in ("", ".", "..") or not _PATH_SEGMENT_RE.match(s) for s in segments
    ):
        raise ValueError(
            f"{path!r} is not a safe relative path ('/'-separated segments of A-Z a-z 0-9 _ . + -, "
            "no '.' or '..')"
        )
    return path


def _sha256(value: str) -> str:
    if not _SHA256_RE.match(value):
        raise ValueError("must be 64 lowercase hex digits")
    return value


def _is_model_language(code: str) -> bool:
    # A model speaks concrete languages; "auto" is a request setting, never a model language.
    return code != "auto" and is_language_code(code)


def _language(value: str) -> str:
    if not _is_model_language(value):
        raise ValueError(f"{value!r} is not an ISO 639-1/-3 language code")
    return value


def _name(value: str) -> str:
    check_name(value)
    return value


def _version(value: str) -> str:
    check_version(value)
    return value


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, AfterValidator(check_file_path)]
    size: int = Field(ge=0)
    sha256: Annotated[str, AfterValidator(_sha256)]


class ModelManifest(BaseModel):
    """``v-<hash>/manifest.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = MANIFEST_SCHEMA_VERSION
    name: Annotated[str, AfterValidator(_name)]
    version: Annotated[str, AfterValidator(_version)]
    format: Literal["transformers"] = "transformers"
    languages: list[Annotated[str, AfterValidator(_language)]] = Field(min_length=1)
    converter_version: int | None = None
    source: str | None = Field(None, max_length=512)
    files: list[ManifestFile] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        paths = [f.path for f in self.files]
        if paths != sorted(set(paths)):
            raise ValueError("files must be sorted by path, each path once")
        as_dirs = {p + "/" for p in paths}
        clash = next((p for p in paths for d in as_dirs if p.startswith(d)), None)
        if clash is not None:
            raise ValueError(f"{clash!r} lies under a path that is also a file")
        if self.languages != sorted(set(self.languages)):
            raise ValueError("languages must be sorted, each once")
        expected = content_version(self._content())
        if self.version != expected:
            raise ValueError(
                f"version {self.version} does not match the manifest's content ({expected}): "
                "the manifest was altered"
            )
        return self

    def _content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"version"})

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def to_bytes(self) -> bytes:
        """Canonical bytes: the same manifest always serialises identically."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes, *, what: str) -> ModelManifest:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            problems = describe_validation_error(exc, root="manifest")
            raise ManifestError(f"{what} is not a valid model manifest: {problems}") from exc


def content_version(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return "v-" + hashlib.sha256(canonical).hexdigest()[:16]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def iter_model_files(directory: Path) -> Iterator[str]:
    """Relative paths of the regular files under ``directory``, sorted.

    Hidden directories (``.cache`` of a hub download, ``.git``) are left out; a symlink to a file
    counts as that file (hub snapshots are symlinks); anything else that is not a regular file
    (a symlinked directory, a socket) is refused rather than silently skipped.
    """
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        base = Path(root)
        for name in list(dirs):
            if name.startswith("."):
                dirs.remove(name)
            elif (base / name).is_symlink():
                raise PublishError(f"{base / name} is a symlinked directory: copy it instead")
        for name in files:
            full = base / name
            try:
                mode = full.stat().st_mode
            except OSError as exc:
                raise PublishError(f"cannot read {full}: {exc.strerror}") from exc
            if not stat.S_ISREG(mode):
                raise PublishError(f"{full} is not a regular file")
            found.append(full.relative_to(directory).as_posix())
    return iter(sorted(found))


def check_model_directory(directory: Path, paths: set[str]) -> None:
    """The files transformers needs to load a Whisper checkpoint from this directory."""
    missing = []
    if "config.json" not in paths:
        missing.append("config.json")
    if "preprocessor_config.json" not in paths:
        missing.append("preprocessor_config.json")
    if "tokenizer.json" not in paths and not {"vocab.json", "merges.txt"} <= paths:
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if not any(name in paths for name in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise PublishError(
            f"{directory} is not a transformers Whisper checkpoint: it lacks {', '.join(missing)}"
        )
    config = _read_json(directory / "config.json")
    if config.get("model_type") != "whisper":
        raise PublishError(
            f"{directory}/config.json has model_type {config.get('model_type')!r}, not 'whisper'"
        )


def detected_languages(directory: Path) -> list[str]:
    """The languages a checkpoint's generation config declares (all of Whisper's for a
    multilingual one); English for an English-only one."""
    path = directory / "generation_config.json"
    generation = _read_json(path) if path.is_file() else {}
    codes = sorted(
        {
            token.strip("<|>")
            for token in (generation.get("lang_to_id") or {})
            if _is_model_language(token.strip("<|>"))
        }
    )
    if codes:
        return codes
    if generation.get("is_multilingual") is False:
        return ["en"]
    raise PublishError(
        f"{directory}: cannot tell the model's languages (no lang_to_id in "
        "generation_config.json): pass --language"
    )


def build_manifest(
    directory: str | os.PathLike[str],
    *,
    name: str,
    languages: list[str] | None = None,
    source: str | None = None,
) -> ModelManifest:
    """Hash every file of a prepared model directory into its manifest (nothing is uploaded)."""
    root = Path(directory)
    if not root.is_dir():
        raise PublishError(f"{root} is not a directory")
    paths = list(iter_model_files(root))
    check_model_directory(root, set(paths))
    files = []
    for path in paths:
        try:
            check_file_path(path)
        except ValueError as exc:
            raise PublishError(f"{root}: {exc}") from exc
        size, digest = hash_file(root / path)
        files.append({"path": path, "size": size, "sha256": digest})
    marker_path = root / CONVERSION_MARKER
    marker = _read_json(marker_path) if marker_path.is_file() else {}
    converter = marker.get("converter_version")
    content: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": name,
        "format": "transformers",
        "languages": sorted(set(languages or detected_languages(root))),
        "converter_version": converter if isinstance(converter, int) else None,
        "source": source if source is not None else marker.get("source"),
        "files": files,
    }
    try:
        return ModelManifest.model_validate({**content, "version": content_version(content)})
    except ValidationError as exc:
        raise PublishError(f"{root}: cannot build a manifest: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PublishError(f"{path} is not a JSON object")
    return data
