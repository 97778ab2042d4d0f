#!/usr/bin/env bash
# step-312: build the server image from the repository's Dockerfile (CUDA runtime, non-root,
# the offline Whisper model baked in by `smart-router model prepare`; BAKE_MODEL=0 leaves it out,
# then mount a prepared model at /opt/smart-router/models/whisper-base). Tagged for ECR as
# IMAGE_TAG and as the git commit. Needs Docker; makes no AWS call. Re-running rebuilds from
# Docker's layer cache.
#
# Usage: step-312-fast-api-build-image.sh [--no-model] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
bake=1
for arg in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
  case "$arg" in
    --no-model) bake=0 ;;
    *) die "unknown argument '$arg' (see $(basename "$0") --help)." ;;
  esac
done
load_env
require_env ECR_REPOSITORY_URI step-301-fast-api-setup-ecr-repository.sh
[[ -f $ROOT/Dockerfile ]] || die "$ROOT/Dockerfile is missing: run this from a complete checkout."
require_docker

tag="${IMAGE_TAG:-latest}"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
run_tool docker build --file "$ROOT/Dockerfile" --build-arg "BAKE_MODEL=$bake" \
  --label "org.opencontainers.image.revision=$commit" \
  --tag "$ECR_REPOSITORY_URI:$tag" --tag "$ECR_REPOSITORY_URI:git-$commit" "$ROOT"
info "built $ECR_REPOSITORY_URI:$tag (and :git-$commit)"
next_step step-313-fast-api-push-image.sh
