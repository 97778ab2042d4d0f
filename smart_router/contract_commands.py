"""Commands over the data contracts: check keys, stitch local transcripts, check settings."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Final, get_args

from pydantic import ValidationError

from transcript_contracts.errors import KeyGrammarError, SettingsError, StitchError
from transcript_contracts.formats import render
from transcript_contracts.keys import KeyLayout, TranscriptFormat
from transcript_contracts.models import ChunkTranscript, Manifest
from transcript_contracts.settings import SettingsBase, load_settings
from transcript_contracts.stitcher import stitch

# Each deployable's settings class, where it lives. Imported on use: checking the router's
# settings never imports the server's package. tests/support/settings.py finds every class here.
DEPLOYABLE_SETTINGS: Final[dict[str, tuple[str, str]]] = {
    "router": ("router.settings", "RouterSettings"),
    "server": ("server.settings", "ServerSettings"),
    "worker": ("batch_worker.settings", "WorkerSettings"),
    "launcher": ("launcher.settings", "LauncherSettings"),
    "status": ("smart_router.settings", "StatusSettings"),
}


def settings_class(deployable: str) -> type[SettingsBase]:
    """The settings class of ``deployable`` (a key of DEPLOYABLE_SETTINGS)."""
    module_name, class_name = DEPLOYABLE_SETTINGS[deployable]
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, SettingsBase)):
        raise TypeError(f"{module_name}.{class_name} is not a settings class")
    return cls


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="check object keys against the key grammar",
        description="Parse each KEY with the grammar of docs/design.md §2; print what it is or why "
        "it is rejected. Exit 1 if any key is rejected.",
    )
    keys.add_argument("key", nargs="+", help="object key, e.g. audio/s1/chunk-0003.mp3")
    keys.add_argument("--audio-prefix", default="audio/", help="audio prefix (default audio/)")
    keys.add_argument(
        "--transcript-prefix",
        default="transcripts/",
        help="transcript prefix (default transcripts/)",
    )
    keys.set_defaults(handler=_keys)

    st = subparsers.add_parser(
        "stitch",
        help="stitch local chunk transcripts into a session transcript",
        description="Stitch chunk transcript JSON files with their manifest into session.json, "
        "session.txt, session.srt and session.vtt in OUT_DIR, as the router and worker do in S3.",
    )
    st.add_argument("--manifest", type=Path, required=True, help="the session's manifest.json")
    st.add_argument("chunks", type=Path, nargs="+", help="chunk transcript JSON files")
    st.add_argument("--out-dir", type=Path, required=True, help="where session.* are written")
    st.set_defaults(handler=_stitch)

    se = subparsers.add_parser(
        "settings",
        help="check a deployable's settings (environment and .env)",
        description="Load the settings of a deployable and report every missing or bad value.",
    )
    se.add_argument(
        "deployable", choices=sorted(DEPLOYABLE_SETTINGS), help="whose settings to check"
    )
    se.set_defaults(handler=_settings)


def _keys(args: argparse.Namespace) -> int:
    layout = KeyLayout(args.audio_prefix, args.transcript_prefix)
    rejected = 0
    for key in args.key:
        try:
            parsed = layout.parse(key)
        except KeyGrammarError as exc:
            rejected += 1
            print(f"REJECTED {key!r}: {exc.reason}")
        else:
            fields = " ".join(f"{k}={v}" for k, v in asdict(parsed).items() if k != "key")
            print(f"OK {type(parsed).__name__} {fields}")
    return 1 if rejected else 0


def _stitch(args: argparse.Namespace) -> int:
    try:
        manifest = Manifest.model_validate_json(args.manifest.read_bytes())
        chunks = [ChunkTranscript.model_validate_json(p.read_bytes()) for p in args.chunks]
        session = stitch(manifest, chunks)
    except (OSError, ValidationError, StitchError) as exc:
        print(f"stitch failed: {exc}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in get_args(TranscriptFormat):
        (args.out_dir / f"session.{fmt}").write_bytes(render(session, fmt))
    print(
        json.dumps(
            {
                "session_id": session.session_id,
                "chunks": session.chunk_count,
                "duration_s": session.duration_s,
                "out_dir": str(args.out_dir),
            }
        )
    )
    print(render(session, "txt").decode("utf-8"), end="")
    return 0


def _settings(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(settings_class(args.deployable))
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    # model_dump keeps SecretStr masked: secrets never reach the terminal.
    print(json.dumps(settings.model_dump(mode="json"), indent=2, default=str))
    return 0
