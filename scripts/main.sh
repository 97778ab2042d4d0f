#!/usr/bin/env bash
# The main job (README Quick start, first command): set-up, then the whole pipeline on this
# machine with `smart-router local`:
#   moto's server on loopback as S3/SQS/EventBridge/DynamoDB/SSM; the bucket, queue + DLQ, the
#   EventBridge rule, idempotency table and key parameter; the transcription server on loopback
#   with the real offline Whisper model on CPU (prepared first if missing); the router handler fed
#   by the rule; the sample sessions (Swedish and English speech) uploaded chunk by chunk. The
#   server is stopped after two chunks, so the rest take the queue path and the batch worker
#   drains them. Session transcripts land in output/local/{session}/session.{json,txt,srt,vtt}.
# Extra arguments go to `smart-router local` (e.g. --server-down, or --session NAME a.mp3 b.mp3).
# Set-up installs only what this needs (the `local` extra); scripts/check.sh adds the test tools.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/dev-setup.sh
cli="$root/.venv/bin/smart-router"

"$cli" model prepare
if [ "$#" -eq 0 ]; then
  set -- --stop-server-after 2
fi
"$cli" local --output output/local "$@"
