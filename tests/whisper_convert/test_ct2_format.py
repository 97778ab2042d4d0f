"""The model.bin reader on small synthetic files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from whisper_convert.ct2_format import model_bin_parts, read_model_bin, write_model_bin
from whisper_convert.errors import ModelConversionError, TruncatedModelError


def _sample(path: Path) -> Path:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 3)).astype(np.float32)
    scale = (127.0 / np.abs(weight).max(axis=1)).astype(np.float32)
    quantized = np.rint(weight * scale[:, None]).astype(np.int8)
    half = np.arange(6, dtype=np.float16).reshape(2, 3)
    bf16 = (np.array([1.5, -2.0], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    write_model_bin(
        path,
        "WhisperSpec",
        3,
        [
            ("decoder/embeddings/weight", half, "float16"),
            ("decoder/num_heads", np.array(8, dtype=np.int16), "int16"),
            ("encoder/bf", bf16, "bfloat16"),
            ("encoder/q/weight", quantized, "int8"),
            ("encoder/q/weight_scale", scale, "float32"),
        ],
        aliases=[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
    return path


def test_reads_header_variables_and_aliases(tmp_path: Path) -> None:
    checkpoint = read_model_bin(_sample(tmp_path / "model.bin"))
    assert (checkpoint.binary_version, checkpoint.spec_name, checkpoint.spec_revision) == (
        6,
        "WhisperSpec",
        3,
    )
    assert len(checkpoint.variables) == 5
    assert checkpoint.resolve("decoder/projection/weight") == "decoder/embeddings/weight"
    np.testing.assert_array_equal(
        checkpoint.float32("decoder/projection/weight"), np.arange(6).reshape(2, 3)
    )
    assert checkpoint.scalar("decoder/num_heads") == 8


def test_dequantizes_int8_rows_and_widens_bfloat16(tmp_path: Path) -> None:
    checkpoint = read_model_bin(_sample(tmp_path / "model.bin"))
    weight = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(checkpoint.float32("encoder/q/weight"), weight, atol=0.02)
    np.testing.assert_array_equal(checkpoint.float32("encoder/bf"), [1.5, -2.0])


def test_reads_a_split_model_bin_as_one_stream(tmp_path: Path) -> None:
    data = _sample(tmp_path / "whole.bin").read_bytes()
    split = tmp_path / "split"
    split.mkdir()
    (split / "model.bin.part1").write_bytes(data[:100])
    (split / "model.bin.part2").write_bytes(data[100:])
    parts = model_bin_parts(split)
    assert [Path(p).name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    assert (
        read_model_bin(parts).variables.keys()
        == read_model_bin(tmp_path / "whole.bin").variables.keys()
    )


@pytest.mark.parametrize(
    ("cut", "index"),
    [(2, 0), (40, 0), (-80, 4), (-10, 5)],
    ids=["in-header", "in-first-variable", "in-last-variable", "in-alias-table"],
)
def test_truncated_file_raises_typed_error_naming_the_variable(
    tmp_path: Path, cut: int, index: int
) -> None:
    data = _sample(tmp_path / "whole.bin").read_bytes()
    truncated = tmp_path / "model.bin"
    truncated.write_bytes(data[:cut])
    with pytest.raises(TruncatedModelError) as caught:
        read_model_bin(truncated)
    assert caught.value.variable_index == index
    if cut > 2:
        assert caught.value.variable_count == 5
        assert f"ends at variable {index} of 5" in str(caught.value)


def test_rejects_unknown_version_and_trailing_bytes(tmp_path: Path) -> None:
    data = _sample(tmp_path / "whole.bin").read_bytes()
    (tmp_path / "v5.bin").write_bytes((5).to_bytes(4, "little") + data[4:])
    with pytest.raises(ModelConversionError, match="binary version 5"):
        read_model_bin(tmp_path / "v5.bin")
    (tmp_path / "long.bin").write_bytes(data + b"\0")
    with pytest.raises(ModelConversionError, match="after the alias table"):
        read_model_bin(tmp_path / "long.bin")


def test_directory_without_model_bin_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelConversionError, match=r"no model\.bin"):
        model_bin_parts(tmp_path)
