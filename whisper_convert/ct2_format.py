"""Reader for CTranslate2's ``model.bin`` (binary version 6), in pure numpy.

Layout (``ctranslate2/specs/model_spec.py``, ``_serialize``), little-endian:
uint32 version, string spec name, uint32 spec revision, uint32 variable count; per variable a
string name, uint8 rank, rank x uint32 dims, uint8 dtype id, uint32 byte count, raw bytes; then
uint32 alias count and (alias, target) string pairs. A string is a uint16 length that counts a
trailing NUL, then the UTF-8 bytes and the NUL.

Quantized weights carry a ``<name>_scale`` companion: int8 has one scale per output row (w = q /
scale), int16 one scalar scale.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import numpy as np

from whisper_convert.errors import ModelConversionError, TruncatedModelError

if TYPE_CHECKING:
    from numpy.typing import NDArray

SUPPORTED_BINARY_VERSIONS = frozenset({6})

# Order of the DataType enum in CTranslate2's include/ctranslate2/types.h.
_DTYPES: dict[int, str] = {
    0: "float32",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "float16",
    5: "bfloat16",
}
_NUMPY_DTYPES: dict[str, np.dtype[np.generic]] = {
    "float32": np.dtype("<f4"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # raw bits; widened to float32 by to_float32
}


@dataclass(frozen=True)
class Ct2Variable:
    """One stored array, with CTranslate2's dtype name (bfloat16 kept as raw uint16 bits)."""

    name: str
    dtype: str
    array: NDArray[np.generic]


@dataclass(frozen=True)
class Ct2Checkpoint:
    """The parsed content of a model.bin."""

    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, Ct2Variable]
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """The name of the stored variable that ``name`` denotes, following aliases."""
        seen: set[str] = set()
        while name in self.aliases:
            if name in seen:
                raise ModelConversionError(f"alias cycle at {name!r} in model.bin")
            seen.add(name)
            name = self.aliases[name]
        return name

    def has(self, name: str) -> bool:
        return self.resolve(name) in self.variables

    def float32(self, name: str) -> NDArray[np.float32]:
        """The variable as float32, dequantized with its ``_scale`` companion when quantized."""
        resolved = self.resolve(name)
        variable = self.variables.get(resolved)
        if variable is None:
            raise ModelConversionError(f"model.bin has no variable {name!r}")
        scale = None
        for scale_name in (f"{name}_scale", f"{resolved}_scale"):
            if self.has(scale_name):
                scale = self.variables[self.resolve(scale_name)]
                break
        return dequantize(variable, scale)

    def scalar(self, name: str) -> float:
        variable = self.variables.get(self.resolve(name))
        if variable is None:
            raise ModelConversionError(f"model.bin has no variable {name!r}")
        return float(to_float32(variable).reshape(-1)[0])


def to_float32(variable: Ct2Variable) -> NDArray[np.float32]:
    """Widen a variable to float32 without applying any scale."""
    if variable.dtype == "bfloat16":
        bits = variable.array.astype(np.uint32) << 16
        return bits.view(np.float32)
    return variable.array.astype(np.float32)


def dequantize(variable: Ct2Variable, scale: Ct2Variable | None) -> NDArray[np.float32]:
    """float32 values of a (possibly quantized) weight."""
    values = to_float32(variable)
    if variable.dtype not in ("int8", "int16"):
        return values
    if scale is None:
        raise ModelConversionError(f"quantized variable {variable.name!r} has no _scale companion")
    factors = to_float32(scale)
    if factors.size == 1:
        return values / factors.reshape(())
    rows = values.shape[0]
    if factors.size != rows:
        raise ModelConversionError(f"{variable.name!r}: {factors.size} scales for {rows} rows")
    # Conv1d weights are quantized per output channel over the flattened remaining dims.
    flat = values.reshape(rows, -1) / factors.reshape(rows, 1)
    return flat.reshape(values.shape).astype(np.float32, copy=False)


class _Reader:
    """Sequential reader over one file or over the ordered parts of a split file."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = list(paths)
        self._handles: list[IO[bytes]] = []
        self._current = 0
        for path in self._paths:
            try:
                self._handles.append(open(path, "rb"))  # noqa: SIM115 - closed in close()
            except OSError as exc:
                self.close()
                raise ModelConversionError(f"cannot open {path}: {exc.strerror}") from exc

    def read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining > 0 and self._current < len(self._handles):
            data = self._handles[self._current].read(remaining)
            if not data:
                self._current += 1
                continue
            chunks.append(data)
            remaining -= len(data)
        return b"".join(chunks)

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


class _Truncated(Exception):  # noqa: N818 - internal control flow, turned into TruncatedModelError
    def __init__(self, wanted: int, got: int) -> None:
        super().__init__(f"wanted {wanted} bytes, got {got}")
        self.wanted = wanted
        self.got = got


def _exact(reader: _Reader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise _Truncated(size, len(data))
    return data


def _u8(reader: _Reader) -> int:
    return int(_exact(reader, 1)[0])


def _u16(reader: _Reader) -> int:
    return int(struct.unpack("<H", _exact(reader, 2))[0])


def _u32(reader: _Reader) -> int:
    return int(struct.unpack("<I", _exact(reader, 4))[0])


def _string(reader: _Reader) -> str:
    length = _u16(reader)
    raw = _exact(reader, length)
    return raw[:-1].decode("utf-8") if raw.endswith(b"\0") else raw.decode("utf-8")


def model_bin_parts(directory: str | os.PathLike[str]) -> list[str]:
    """The file(s) holding ``model.bin`` in a directory: ``model.bin`` or its ordered parts.

    Split distributions (for example ``model.bin.part1``, ``model.bin.part2``) are read as one
    stream, so the joined file never has to be written.
    """
    base = os.fspath(directory)
    whole = os.path.join(base, "model.bin")
    if os.path.isfile(whole):
        return [whole]
    parts = []
    for entry in os.listdir(base) if os.path.isdir(base) else []:
        suffix = entry.removeprefix("model.bin.part")
        if entry.startswith("model.bin.part") and suffix.isdigit():
            parts.append((int(suffix), os.path.join(base, entry)))
    if not parts:
        raise ModelConversionError(f"{base}: no model.bin (nor model.bin.partN files)")
    parts.sort()
    numbers = [number for number, _ in parts]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise ModelConversionError(f"{base}: model.bin parts are not consecutive: {numbers}")
    return [path for _, path in parts]


def read_model_bin(paths: str | os.PathLike[str] | Sequence[str]) -> Ct2Checkpoint:
    """Parse a model.bin (or the ordered parts of a split one).

    Raises TruncatedModelError when the data ends early and ModelConversionError for an
    unsupported version or a malformed header.
    """
    files = [os.fspath(paths)] if isinstance(paths, str | os.PathLike) else list(paths)
    label = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} parts)"
    reader = _Reader(files)
    count = 0
    index = 0
    try:
        try:
            version = _u32(reader)
            if version not in SUPPORTED_BINARY_VERSIONS:
                raise ModelConversionError(
                    f"{label}: model.bin binary version {version} is not supported "
                    f"(supported: {sorted(SUPPORTED_BINARY_VERSIONS)})"
                )
            spec_name = _string(reader)
            revision = _u32(reader)
            count = _u32(reader)
            variables: dict[str, Ct2Variable] = {}
            for index in range(count):  # noqa: B007 - index is reported on truncation
                variable = _read_variable(reader, label)
                variables[variable.name] = variable
            index = count
            aliases: dict[str, str] = {}
            for _ in range(_u32(reader)):
                alias = _string(reader)
                aliases[alias] = _string(reader)
        except _Truncated as exc:
            detail = "in the header" if count == 0 else str(exc)
            if index >= count and count > 0:
                detail = f"in the alias table: {exc}"
            raise TruncatedModelError(label, index, count, detail) from exc
        if reader.read(1):
            raise ModelConversionError(f"{label}: unexpected data after the alias table")
    finally:
        reader.close()
    return Ct2Checkpoint(version, spec_name, revision, variables, aliases)


def _read_variable(reader: _Reader, label: str) -> Ct2Variable:
    name = _string(reader)
    rank = _u8(reader)
    shape = tuple(_u32(reader) for _ in range(rank))
    type_id = _u8(reader)
    dtype = _DTYPES.get(type_id)
    if dtype is None:
        raise ModelConversionError(f"{label}: variable {name!r} has unknown dtype id {type_id}")
    nbytes = _u32(reader)
    np_dtype = _NUMPY_DTYPES[dtype]
    expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
    if nbytes != expected:
        raise ModelConversionError(
            f"{label}: variable {name!r} declares {nbytes} bytes for shape {shape} {dtype}"
        )
    raw = _exact(reader, nbytes)
    array = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
    return Ct2Variable(name=name, dtype=dtype, array=array)


def write_model_bin(
    path: str | os.PathLike[str],
    spec_name: str,
    revision: int,
    variables: Sequence[tuple[str, NDArray[np.generic], str]],
    aliases: Sequence[tuple[str, str]] = (),
) -> None:
    """Write a model.bin; used by tests to build small synthetic checkpoints."""
    type_ids = {name: type_id for type_id, name in _DTYPES.items()}

    def string(value: str) -> bytes:
        encoded = value.encode("utf-8") + b"\0"
        return struct.pack("<H", len(encoded)) + encoded

    with open(path, "wb") as out:
        out.write(struct.pack("<I", 6) + string(spec_name) + struct.pack("<I", revision))
        out.write(struct.pack("<I", len(variables)))
        for name, array, dtype in variables:
            data = np.ascontiguousarray(array, dtype=_NUMPY_DTYPES[dtype]).tobytes()
            out.write(string(name) + struct.pack("<B", array.ndim))
            out.write(b"".join(struct.pack("<I", dim) for dim in array.shape))
            out.write(struct.pack("<BI", type_ids[dtype], len(data)) + data)
        out.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases:
            out.write(string(alias) + string(target))
