#!/usr/bin/env bash
# step-020: the work queue and its dead-letter queue.
#
# Both are resources of template.yaml (WorkQueue, WorkDeadLetterQueue: redrive after 3 receives,
# SSE, DLQ retention 14 days): the SAM stack owns them and this step makes no second copy. When
# the stack STACK_NAME does not exist it is deployed (sam build + sam deploy, as step-340 does);
# when it does, nothing is deployed. Either way the stack outputs are written to .env: QUEUE_URL,
# DLQ_URL, IDEMPOTENCY_TABLE, ROUTER_FUNCTION_ARN, ... Re-running changes nothing.
#
# Usage: step-020-create-sqs-resources.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env STACK_NAME step-000-setup-configuration.sh
require_env BUCKET_NAME step-000-setup-configuration.sh
require_aws

read_stack
if [[ -z $STACK_STATUS ]]; then
  info "stack $STACK_NAME does not exist: deploying template.yaml (it owns the queues)"
  deploy_stack
  read_stack
elif [[ $STACK_STATUS == *_IN_PROGRESS ]]; then
  die "stack $STACK_NAME is $STACK_STATUS: wait for it to finish and run this step again."
elif ! stack_ready; then
  die "stack $STACK_NAME is $STACK_STATUS: fix it (see its events) and re-deploy with step-340."
else
  info "stack $STACK_NAME: $STACK_STATUS (queues already deployed)"
fi

if [[ $DRY_RUN == 0 ]]; then
  [[ -n $(stack_output QueueUrl) ]] || die "stack $STACK_NAME has no QueueUrl output: deploy the current template.yaml with step-340."
fi
record_stack_outputs
info "work queue: ${QUEUE_URL:-<QueueUrl output>}"
info "dead-letter queue: ${DLQ_URL:-<DeadLetterQueueUrl output>}"
next_step step-021-validate-sqs-resources.sh
