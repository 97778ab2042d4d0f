"""`smart-router model publish | fetch`: the S3 model registry (docs/model-supply.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from whisper_engine.errors import WhisperEngineError

CACHE_DIR_ENV = "MODEL_CACHE_DIR"


def cache_dir() -> Path | None:
    """MODEL_CACHE_DIR as the server and the worker read it; None: the registry's default."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = commands.add_parser(
        "publish",
        help="upload a prepared model directory to the S3 model registry",
        description="Upload DIR (a transformers Whisper checkpoint: config.json, weights, "
        "tokenizer and preprocessor files; subdirectories such as a quantized form included) "
        "to URI (s3://BUCKET/models/NAME/) as a content-addressed version "
        "URI/v-<hash>/ with a manifest (every file's size and sha256, name, languages, "
        "converter version), then point URI/latest.json at it. Every upload is create-only: "
        "publishing the same directory again uploads nothing, a changed file makes a new "
        "version. Prints the result as JSON; its 'uri' is the pinned MODEL_ID to deploy.",
    )
    publish.add_argument("directory", type=Path, metavar="DIR", help="model directory")
    publish.add_argument("uri", metavar="URI", help="s3://BUCKET/models/NAME/")
    publish.add_argument(
        "--language",
        dest="languages",
        action="append",
        default=None,
        metavar="CODE",
        help="a language the model is meant for (repeat for several; default: the languages "
        "its generation_config.json declares)",
    )
    publish.add_argument(
        "--source", default=None, help="where the weights came from, e.g. KBLab/kb-whisper-small"
    )
    publish.add_argument(
        "--no-latest",
        dest="set_latest",
        action="store_false",
        help="upload the version but leave latest.json as it is",
    )
    publish.add_argument(
        "--plan",
        action="store_true",
        help="only hash DIR and print the version it would become (no S3 call)",
    )
    publish.set_defaults(handler=_publish)

    fetch = commands.add_parser(
        "fetch",
        help="download and verify a registry model into the local cache",
        description="What the server and the worker do at start with MODEL_ID=URI: read "
        "URI/latest.json (unless URI names a version), download every file into the cache, "
        "check each size and sha256 against the manifest, and print the local directory as "
        "JSON. A verified cache is reused without downloading. Exit 1 names the file at "
        "fault when one is missing, truncated or altered.",
    )
    fetch.add_argument("uri", metavar="URI", help="s3://BUCKET/models/NAME/[v-HASH/]")
    fetch.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache directory (default $MODEL_CACHE_DIR, else ~/.cache/smart-router/models)",
    )
    fetch.set_defaults(handler=_fetch)


def _publish(args: argparse.Namespace) -> int:
    from model_registry.publish import plan, publish
    from model_registry.resolve import registry_client

    try:
        if args.plan:
            location, manifest = plan(
                args.directory, args.uri, languages=args.languages, source=args.source
            )
            summary = {
                "uri": location.uri,
                "version": manifest.version,
                "files": len(manifest.files),
                "bytes": manifest.total_size,
                "languages": manifest.languages,
            }
            print(json.dumps(summary, indent=2))
            return 0
        result = publish(
            args.directory,
            args.uri,
            s3=registry_client(),
            languages=args.languages,
            source=args.source,
            set_latest=args.set_latest,
        )
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from model_registry.fetch import fetch_model
    from model_registry.resolve import registry_client

    try:
        local = fetch_model(args.uri, s3=registry_client(), cache_dir=args.cache_dir or cache_dir())
    except WhisperEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(local.to_dict(), indent=2))
    return 0
