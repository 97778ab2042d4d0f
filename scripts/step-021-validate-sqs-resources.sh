#!/usr/bin/env bash
# step-021: validate the queues step-020 recorded: QUEUE_URL is the stack's QueueUrl output,
# the queue exists with server-side encryption, a redrive policy to the dead-letter queue after
# at least 3 receives and a visibility timeout of at least 60 s; the dead-letter queue keeps
# messages at least as long as the work queue. Prints the queue depths. Changes nothing.
#
# Usage: step-021-validate-sqs-resources.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env QUEUE_URL step-020-create-sqs-resources.sh
require_aws

NOT_FOUND='NonExistentQueue|QueueDoesNotExist'
attributes() {
  aws_lookup "$NOT_FOUND" sqs get-queue-attributes --queue-url "$1" --attribute-names All \
    --query 'Attributes.[VisibilityTimeout,MessageRetentionPeriod,SqsManagedSseEnabled,KmsMasterKeyId,RedrivePolicy,ApproximateNumberOfMessages,QueueArn]' \
    --output text
}

if ! attributes "$QUEUE_URL"; then
  [[ $DRY_RUN == 1 ]] && { next_step step-301-fast-api-setup-ecr-repository.sh; exit 0; }
  die "queue $QUEUE_URL does not exist: run $(step_path step-020-create-sqs-resources.sh) again."
fi
IFS=$'\t' read -r visibility retention sse kms redrive depth _ <<<"$AWS_OUT"
[[ $sse == true || ($kms != None && -n $kms) ]] || die "queue $QUEUE_URL has no server-side encryption: re-deploy template.yaml (step-340)."
[[ $redrive != None && -n $redrive ]] || die "queue $QUEUE_URL has no redrive policy: re-deploy template.yaml (step-340)."
max_receive="$(printf '%s' "$redrive" | sed -n 's/.*"maxReceiveCount"[^0-9]*\([0-9][0-9]*\).*/\1/p')"
dlq_arn="$(printf '%s' "$redrive" | sed -n 's/.*"deadLetterTargetArn"[^"]*"\([^"]*\)".*/\1/p')"
[[ ${max_receive:-0} -ge 3 ]] || die "queue $QUEUE_URL moves messages to the DLQ after ${max_receive:-?} receives (want at least 3)."
[[ $visibility -ge 60 ]] || die "queue $QUEUE_URL has a visibility timeout of ${visibility}s (want at least 60)."

dlq_url="${DLQ_URL:-}"
if [[ -z $dlq_url ]]; then
  aws_lookup "$NOT_FOUND" sqs get-queue-url --queue-name "${dlq_arn##*:}" --query QueueUrl --output text ||
    die "dead-letter queue ${dlq_arn##*:} does not exist: re-deploy template.yaml (step-340)."
  dlq_url="$AWS_OUT"
fi
attributes "$dlq_url" || die "dead-letter queue $dlq_url does not exist: re-deploy template.yaml (step-340)."
IFS=$'\t' read -r _ dlq_retention _ _ _ dlq_depth dlq_own_arn <<<"$AWS_OUT"
[[ $dlq_own_arn == "$dlq_arn" ]] || die "DLQ_URL $dlq_url is not the queue's dead-letter target $dlq_arn: re-run step-020."
[[ $dlq_retention -ge $retention ]] || die "the dead-letter queue keeps messages ${dlq_retention}s, less than the work queue's ${retention}s."

if [[ -n ${STACK_NAME:-} ]]; then
  read_stack
  stack_queue="$(stack_output QueueUrl)"
  if [[ -n $stack_queue && $stack_queue != "$QUEUE_URL" ]]; then
    die "QUEUE_URL is not the stack's QueueUrl output ($stack_queue): re-run step-020."
  fi
fi
info "work queue: ok (visibility ${visibility}s, retention ${retention}s, DLQ after $max_receive receives, $depth waiting)"
info "dead-letter queue: ok (retention ${dlq_retention}s, $dlq_depth waiting)"
next_step step-301-fast-api-setup-ecr-repository.sh
