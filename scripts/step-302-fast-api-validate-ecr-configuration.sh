#!/usr/bin/env bash
# step-302: validate the ECR repository of step-301: it exists, its URI is ECR_REPOSITORY_URI,
# scan on push is on, a lifecycle policy is set, and a registry login token can be had (what
# step-313's docker login needs). Lists the pushed tags. Changes nothing.
#
# Usage: step-302-fast-api-validate-ecr-configuration.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env ECR_REPOSITORY_URI step-301-fast-api-setup-ecr-repository.sh
require_aws

if ! aws_lookup RepositoryNotFoundException ecr describe-repositories \
  --repository-names "$ECR_REPOSITORY" \
  --query 'repositories[0].[repositoryUri,imageScanningConfiguration.scanOnPush]' --output text; then
  [[ $DRY_RUN == 1 ]] || die "ECR repository $ECR_REPOSITORY does not exist: run $(step_path step-301-fast-api-setup-ecr-repository.sh) first."
else
  IFS=$'\t' read -r uri scan <<<"$AWS_OUT"
  [[ $uri == "$ECR_REPOSITORY_URI" ]] || die "ECR_REPOSITORY_URI ($ECR_REPOSITORY_URI) is not the repository's URI $uri: re-run step-301."
  [[ $scan == True || $scan == true ]] || die "scan on push is off for $ECR_REPOSITORY: re-run step-301 or turn it on."
  info "repository: $uri (scan on push)"
fi
aws_lookup LifecyclePolicyNotFoundException ecr get-lifecycle-policy --repository-name "$ECR_REPOSITORY" \
  --query repositoryName --output text ||
  [[ $DRY_RUN == 1 ]] || die "ECR repository $ECR_REPOSITORY has no lifecycle policy: re-run step-301."
aws_lookup '^$' ecr get-authorization-token --query 'length(authorizationData)' --output text || true
info "registry login: ok"
aws_lookup RepositoryNotFoundException ecr list-images --repository-name "$ECR_REPOSITORY" \
  --query 'imageIds[].imageTag' --output text || true
info "pushed tags: ${AWS_OUT:-none yet}"
next_step step-312-fast-api-build-image.sh
