#!/usr/bin/env bash
# The main job (README Quick start, first command): set-up, then the most complete real run the
# project has. Today that is the stitcher over the example session's chunk transcripts; the local
# end-to-end pipeline (issue 8) replaces it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/dev-setup.sh
exec "$root/.venv/bin/smart-router" stitch \
  --manifest examples/session-demo/manifest.json \
  examples/session-demo/chunk-*.json \
  --out-dir output/session-demo "$@"
