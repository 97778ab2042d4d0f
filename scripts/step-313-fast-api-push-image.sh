#!/usr/bin/env bash
# step-313: push the image of step-312 to ECR (docker login with a token from
# `aws ecr get-login-password`, read from a pipe, never a command line). Pushing again only
# uploads changed layers. Records IMAGE_URI (repository:IMAGE_TAG) in .env for step-320/340.
#
# Usage: step-313-fast-api-push-image.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env ECR_REPOSITORY_URI step-301-fast-api-setup-ecr-repository.sh
require_aws
require_docker

tag="${IMAGE_TAG:-latest}"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
registry="${ECR_REPOSITORY_URI%%/*}"
if [[ $DRY_RUN == 1 ]]; then
  print_call "${AWS_BASE[@]}" ecr get-login-password
  print_call docker login --username AWS --password-stdin "$registry"
else
  docker image inspect "$ECR_REPOSITORY_URI:$tag" >/dev/null 2>&1 ||
    die "image $ECR_REPOSITORY_URI:$tag is not built: run $(step_path step-312-fast-api-build-image.sh) first."
  "${AWS_BASE[@]}" ecr get-login-password | docker login --username AWS --password-stdin "$registry" >/dev/null ||
    die "docker login to $registry failed: check the credentials and step-302."
fi
run_tool docker push "$ECR_REPOSITORY_URI:$tag"
if [[ $DRY_RUN == 1 ]] || docker image inspect "$ECR_REPOSITORY_URI:git-$commit" >/dev/null 2>&1; then
  run_tool docker push "$ECR_REPOSITORY_URI:git-$commit"
fi
set_env_value IMAGE_URI "$ECR_REPOSITORY_URI:$tag"
info "pushed $ECR_REPOSITORY_URI:$tag"
next_step step-320-fast-api-launch-gpu-instances.sh
