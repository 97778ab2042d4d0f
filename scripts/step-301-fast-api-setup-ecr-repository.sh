#!/usr/bin/env bash
# step-301: the ECR repository of the server image (the same image runs `smart-router serve`
# and `smart-router worker`). Not in template.yaml: the image must exist before the stack's
# launch template can name it. Create-if-missing with scan on push and AES256 encryption, a
# lifecycle policy that keeps the newest 20 images, and ECR_REPOSITORY_URI written to .env.
# Re-running changes nothing.
#
# Usage: step-301-fast-api-setup-ecr-repository.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env ECR_REPOSITORY step-000-setup-configuration.sh
require_aws

NOT_FOUND='RepositoryNotFoundException'
if aws_lookup "$NOT_FOUND" ecr describe-repositories --repository-names "$ECR_REPOSITORY" \
  --query 'repositories[0].repositoryUri' --output text; then
  uri="$AWS_OUT"
  info "ECR repository $ECR_REPOSITORY exists"
else
  aws_run ecr create-repository --repository-name "$ECR_REPOSITORY" \
    --image-scanning-configuration scanOnPush=true \
    --encryption-configuration encryptionType=AES256 \
    --tags Key=Project,Value=smart-transcription-router \
    --query 'repository.repositoryUri' --output text
  uri="${AWS_OUT:-${ACCOUNT_ID}.dkr.ecr.${AWS_REGION}.amazonaws.com/${ECR_REPOSITORY}}"
  info "ECR repository $ECR_REPOSITORY created"
fi

policy='{"rules":[{"rulePriority":1,"description":"keep the newest 20 images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":20},"action":{"type":"expire"}}]}'
if aws_lookup 'LifecyclePolicyNotFoundException' ecr get-lifecycle-policy \
  --repository-name "$ECR_REPOSITORY" --query lifecyclePolicyText --output text; then
  info "lifecycle policy: present"
else
  aws_run ecr put-lifecycle-policy --repository-name "$ECR_REPOSITORY" --lifecycle-policy-text "$policy"
  info "lifecycle policy: keeps the newest 20 images"
fi
set_env_value ECR_REPOSITORY_URI "$uri"
next_step step-302-fast-api-validate-ecr-configuration.sh
