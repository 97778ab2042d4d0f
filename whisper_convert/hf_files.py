"""The transformers checkpoint files written from a converted CTranslate2 Whisper model.

config.json, generation_config.json, preprocessor and tokenizer files, model.safetensors: what
``WhisperForConditionalGeneration`` and ``WhisperProcessor`` read back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_convert.errors import ModelConversionError
from whisper_convert.weights import WhisperDims
from whisper_engine.errors import ModelError
from whisper_engine.tokens import TIME_PRECISION_S, SpecialTokens

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_TIMESTAMP_COUNT = 1501  # <|0.00|> ... <|30.00|>


def read_special_tokens(tokenizer_json: dict[str, Any]) -> SpecialTokens:
    """Special token ids by content from a Hugging Face tokenizer.json."""
    added = {token["content"]: int(token["id"]) for token in tokenizer_json.get("added_tokens", [])}
    vocab = tokenizer_json.get("model", {}).get("vocab", {})

    def token_id(content: str) -> int:
        found = added.get(content, vocab.get(content))
        if found is None:
            raise ModelConversionError(f"tokenizer.json has no {content} token")
        return int(found)

    sot = token_id("<|startoftranscript|>")
    translate = token_id("<|translate|>")
    languages = {
        content: ident
        for content, ident in added.items()
        if sot < ident < translate and re.fullmatch(r"<\|[a-z]{2,3}(_[a-z]+)?\|>", content)
    }

    def lookup(content: str) -> int | None:
        found = added.get(content, vocab.get(content))
        return None if found is None else int(found)

    try:
        return SpecialTokens.from_lookup(lookup, languages)
    except ModelError as exc:
        raise ModelConversionError(f"tokenizer.json: {exc}") from exc


def _with_timestamp_tokens(
    tokenizer_json: dict[str, Any], tokens: SpecialTokens, vocab_size: int
) -> dict[str, Any]:
    """tokenizer.json with <|0.00|>...<|30.00|> added, so tokenizer and model vocabularies agree.

    They are not marked special: WhisperTokenizer locates the first timestamp id as "last special
    id + 1" and strips timestamps from decoded text itself.
    """
    result: dict[str, Any] = json.loads(json.dumps(tokenizer_json))
    added = result.setdefault("added_tokens", [])
    present = {token["content"] for token in added}
    count = min(_TIMESTAMP_COUNT, vocab_size - tokens.timestamp_begin)
    for index in range(count):
        content = f"<|{index * TIME_PRECISION_S:.2f}|>"
        if content in present:
            continue
        added.append(
            {
                "id": tokens.timestamp_begin + index,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    return result


def _alignment_heads(ct2_config: dict[str, Any], dims: WhisperDims) -> list[list[int]]:
    heads = ct2_config.get("alignment_heads")
    if heads:
        return [[int(layer), int(head)] for layer, head in heads]
    # CTranslate2's own default: every head of the second half of the decoder.
    return [
        [layer, head]
        for layer in range(dims.decoder_layers // 2, dims.decoder_layers)
        for head in range(dims.decoder_heads)
    ]


def build_generation_config(
    tokens: SpecialTokens, dims: WhisperDims, ct2_config: dict[str, Any]
) -> dict[str, Any]:
    """generation_config.json content.

    Carries forced_decoder_ids as well as lang_to_id/task_to_id: a caller that passes neither
    language nor task then still gets "detect language, transcribe" instead of an unprompted
    decoder that loops.
    """
    suppress = [int(t) for t in ct2_config.get("suppress_ids") or []]
    begin_suppress = [int(t) for t in ct2_config.get("suppress_ids_begin") or [220, tokens.eot]]
    config: dict[str, Any] = {
        "alignment_heads": _alignment_heads(ct2_config, dims),
        "begin_suppress_tokens": begin_suppress,
        "bos_token_id": tokens.eot,
        "decoder_start_token_id": tokens.sot,
        "eos_token_id": tokens.eot,
        "pad_token_id": tokens.eot,
        "is_multilingual": dims.multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": dims.max_target_positions,
        "no_timestamps_token_id": tokens.no_timestamps,
        "prev_sot_token_id": tokens.sot_prev,
        "return_timestamps": False,
        "suppress_tokens": suppress,
        "num_beams": 1,
        "do_sample": False,
    }
    if dims.multilingual:
        config["lang_to_id"] = dict(sorted(tokens.languages.items(), key=lambda item: item[1]))
        config["task_to_id"] = {"transcribe": tokens.transcribe, "translate": tokens.translate}
        config["forced_decoder_ids"] = [[1, None], [2, tokens.transcribe]]
    else:
        config["forced_decoder_ids"] = [[1, tokens.no_timestamps]]
    return config


def build_model_config(
    tokens: SpecialTokens, dims: WhisperDims, ct2_config: dict[str, Any], tied: bool
) -> dict[str, Any]:
    """config.json content for WhisperForConditionalGeneration."""
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "activation_function": "gelu",
        "vocab_size": dims.vocab_size,
        "num_mel_bins": dims.num_mel_bins,
        "d_model": dims.d_model,
        "encoder_layers": dims.encoder_layers,
        "decoder_layers": dims.decoder_layers,
        "encoder_attention_heads": dims.encoder_heads,
        "decoder_attention_heads": dims.decoder_heads,
        "encoder_ffn_dim": dims.encoder_ffn_dim,
        "decoder_ffn_dim": dims.decoder_ffn_dim,
        "max_source_positions": dims.max_source_positions,
        "max_target_positions": dims.max_target_positions,
        "num_hidden_layers": dims.encoder_layers,
        "scale_embedding": False,
        "tie_word_embeddings": tied,
        "bos_token_id": tokens.eot,
        "eos_token_id": tokens.eot,
        "pad_token_id": tokens.eot,
        "decoder_start_token_id": tokens.sot,
        "begin_suppress_tokens": [
            int(t) for t in ct2_config.get("suppress_ids_begin") or [220, tokens.eot]
        ],
        "suppress_tokens": [int(t) for t in ct2_config.get("suppress_ids") or []],
        "use_cache": True,
        "torch_dtype": "float32",
    }


def write_checkpoint(
    directory: Path,
    weights: dict[str, NDArray[np.float32]],
    tokens: SpecialTokens,
    dims: WhisperDims,
    ct2_config: dict[str, Any],
    tokenizer_json: dict[str, Any],
    tied: bool,
) -> None:
    from safetensors.numpy import save_file

    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    write_json(directory / "config.json", build_model_config(tokens, dims, ct2_config, tied))
    write_json(
        directory / "generation_config.json", build_generation_config(tokens, dims, ct2_config)
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "feature_extractor_type": "WhisperFeatureExtractor",
            "processor_class": "WhisperProcessor",
            "feature_size": dims.num_mel_bins,
            "sampling_rate": 16000,
            "hop_length": 160,
            "chunk_length": 30,
            "n_fft": 400,
            "n_samples": 480000,
            "nb_max_frames": 3000,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": False,
        },
    )
    full_tokenizer = _with_timestamp_tokens(tokenizer_json, tokens, dims.vocab_size)
    write_json(directory / "tokenizer.json", full_tokenizer)
    _write_slow_tokenizer_files(directory, tokenizer_json)
    # WhisperTokenizer takes "last special id + 1" as the first timestamp: every special token
    # (<|startoftranscript|> ... <|notimestamps|>) must be declared as such.
    additional = [
        token["content"]
        for token in sorted(tokenizer_json.get("added_tokens", []), key=lambda t: int(t["id"]))
        if token.get("special") and token["content"] != "<|endoftext|>"
    ]
    write_json(
        directory / "tokenizer_config.json",
        {
            "tokenizer_class": "WhisperTokenizer",
            "additional_special_tokens": additional,
            "processor_class": "WhisperProcessor",
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "add_prefix_space": False,
            "errors": "replace",
            "model_max_length": 1024,
            "clean_up_tokenization_spaces": False,
        },
    )
    write_json(
        directory / "special_tokens_map.json",
        {
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "additional_special_tokens": additional,
        },
    )


def _write_slow_tokenizer_files(directory: Path, tokenizer_json: dict[str, Any]) -> None:
    """vocab.json and merges.txt, for transformers versions that build the Python tokenizer."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise ModelConversionError("tokenizer.json is not a byte-level BPE tokenizer")
    write_json(directory / "vocab.json", model["vocab"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
