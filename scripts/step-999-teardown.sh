#!/usr/bin/env bash
# step-999: remove what the steps created, in reverse: every instance the stack can start (the
# server of step-320 and the launcher's batch workers: tag SmartRouterRole = the stack's
# ServerInstanceTag / BatchInstanceTag outputs, or their template formulas when the stack is
# gone), terminated and waited for; the stack STACK_NAME (network, router, rule, queues and their
# messages, table, launcher, alarms, roles); the ECR repository with its images; the SSM key and
# webhook signing key (--keep-key keeps them) and the bucket's EventBridge switch (other
# notifications kept). The bucket and its audio and transcripts are never touched. Asks for
# confirmation unless --yes. Whatever is already gone is skipped, so it can run again. Clears
# the recorded outputs from .env.
#
# Usage: step-999-teardown.sh [--yes] [--keep-key] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
yes=0
keep_key=0
for arg in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
  case "$arg" in
    --yes) yes=1 ;;
    --keep-key) keep_key=1 ;;
    *) die "unknown argument '$arg' (see $(basename "$0") --help)." ;;
  esac
done
load_env
require_env STACK_NAME step-000-setup-configuration.sh
require_aws

if [[ $yes == 0 && $DRY_RUN == 0 ]]; then
  [[ -t 0 ]] || die "teardown deletes stack $STACK_NAME and its queues: pass --yes to confirm without a terminal."
  printf 'Delete stack %s, its queues, the ECR repository and the server instances? [y/N] ' "$STACK_NAME" >&2
  read -r answer
  [[ $answer =~ ^[Yy] ]] || die "teardown cancelled: nothing was deleted."
fi

read_stack
stack_instance_tags
for tag in "${INSTANCE_TAGS[@]}"; do
  aws_lookup '^$' ec2 describe-instances \
    --filters "Name=tag:$ROLE_TAG_KEY,Values=$tag" "Name=instance-state-name,Values=pending,running,stopping,stopped" \
    --query 'Reservations[].Instances[].InstanceId' --output text || true
  ids="${AWS_OUT:-}"
  if [[ -n $ids && $ids != None ]]; then
    # shellcheck disable=SC2086 # one word per instance id
    aws_run ec2 terminate-instances --instance-ids $ids
    # The server's network interface is the stack's: it is free only once the instance is gone.
    # shellcheck disable=SC2086 # one word per instance id
    aws_run ec2 wait instance-terminated --instance-ids $ids
    info "terminated instances tagged $ROLE_TAG_KEY=$tag: $ids"
  elif [[ $DRY_RUN == 1 ]]; then
    print_call "${AWS_BASE[@]}" ec2 terminate-instances --instance-ids "<instances tagged $ROLE_TAG_KEY=$tag>"
  else
    info "no instances tagged $ROLE_TAG_KEY=$tag"
  fi
done

if [[ -n $STACK_STATUS || $DRY_RUN == 1 ]]; then
  aws_run cloudformation delete-stack --stack-name "$STACK_NAME"
  aws_run cloudformation wait stack-delete-complete --stack-name "$STACK_NAME"
  info "stack $STACK_NAME deleted"
else
  info "stack $STACK_NAME: already gone"
fi

if [[ -n ${ECR_REPOSITORY:-} ]]; then
  if aws_lookup RepositoryNotFoundException ecr describe-repositories \
    --repository-names "$ECR_REPOSITORY" --query 'repositories[0].repositoryName' --output text ||
    [[ $DRY_RUN == 1 ]]; then
    aws_run ecr delete-repository --repository-name "$ECR_REPOSITORY" --force
    info "ECR repository $ECR_REPOSITORY deleted"
  else
    info "ECR repository $ECR_REPOSITORY: already gone"
  fi
fi

if [[ $keep_key == 0 ]]; then
  for parameter in "${API_KEY_PARAMETER:-}" "${WEBHOOK_SECRET_PARAMETER:-}"; do
    [[ -n $parameter ]] || continue
    if aws_lookup ParameterNotFound ssm get-parameter --name "$parameter" \
      --query Parameter.Name --output text || [[ $DRY_RUN == 1 ]]; then
      aws_run ssm delete-parameter --name "$parameter"
      info "SSM parameter $parameter deleted"
    else
      info "SSM parameter $parameter: already gone"
    fi
  done
fi

if [[ -n ${BUCKET_NAME:-} ]] && aws_lookup NoSuchBucket s3api get-bucket-notification-configuration \
  --bucket "$BUCKET_NAME" --output json; then
  if [[ $AWS_OUT == *EventBridgeConfiguration* ]]; then
    require_cmd python3 "install Python 3 (used to edit the bucket's notification configuration)"
    rest="$(printf '%s' "$AWS_OUT" | python3 -c '
import json, sys
config = json.loads(sys.stdin.read() or "{}")
print(json.dumps({k: v for k, v in config.items() if v and k not in ("EventBridgeConfiguration", "ResponseMetadata")}))')"
    aws_run s3api put-bucket-notification-configuration --bucket "$BUCKET_NAME" \
      --notification-configuration "$rest"
    info "bucket $BUCKET_NAME no longer sends events to EventBridge (its objects are kept)"
  fi
fi

for key in $(printf '%s' "$STACK_OUTPUT_SETTINGS" | tr ' ' '\n' | sed 's/.*://') ECR_REPOSITORY_URI \
  IMAGE_URI SERVER_INSTANCE_ID; do
  if [[ -n ${!key:-} ]]; then
    set_env_value "$key" ""
  fi
done
info "teardown complete; the bucket s3://${BUCKET_NAME:-?} and its objects were kept"
next_step step-000-setup-configuration.sh
