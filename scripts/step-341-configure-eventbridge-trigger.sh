#!/usr/bin/env bash
# step-341: the S3 -> EventBridge -> router trigger.
#
# The EventBridge rule (Object Created under AUDIO_PREFIX of BUCKET_NAME, with retry policy and
# DLQ) is template.yaml's, deployed by step-340: this step validates it (exists, ENABLED, names
# the bucket, has a target) and creates no second rule. What the stack cannot own is the
# existing bucket's switch that sends its events to EventBridge: this step turns it on with
# put-bucket-notification-configuration, keeping every topic/queue/Lambda notification already
# configured on the bucket. Re-running changes nothing.
#
# Usage: step-341-configure-eventbridge-trigger.sh [--env-file PATH] [--dry-run]
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
[[ -n $STACK_STATUS || $DRY_RUN == 1 ]] || die "stack $STACK_NAME is not deployed: run $(step_path step-340-deploy-lambda-router.sh) first."
rules="$(stack_resources AWS::Events::Rule)"
[[ -n $rules || $DRY_RUN == 1 ]] || die "stack $STACK_NAME has no EventBridge rule: deploy the current template.yaml with step-340."

aws_lookup 'NoSuchBucket' s3api get-bucket-notification-configuration --bucket "$BUCKET_NAME" \
  --output json || [[ $DRY_RUN == 1 ]] || die "bucket $BUCKET_NAME does not exist: create it (aws s3 mb s3://$BUCKET_NAME) first."
current="${AWS_OUT:-}"
if [[ $current == *EventBridgeConfiguration* ]]; then
  info "bucket $BUCKET_NAME already sends its events to EventBridge"
else
  require_cmd python3 "install Python 3 (used to merge the bucket's notification configuration)"
  merged="$(printf '%s' "${current:-"{}"}" | python3 -c '
import json, sys
text = sys.stdin.read().strip()
config = json.loads(text) if text else {}
config = {k: v for k, v in config.items() if v and k != "ResponseMetadata"}
config["EventBridgeConfiguration"] = {}
print(json.dumps(config, separators=(",", ":")))')"
  aws_run s3api put-bucket-notification-configuration --bucket "$BUCKET_NAME" \
    --notification-configuration "$merged"
  info "bucket $BUCKET_NAME now sends its events to EventBridge"
fi

for rule in $rules; do
  name="${rule##*/}"
  aws_lookup ResourceNotFoundException events describe-rule --name "$name" \
    --query '[State,EventPattern]' --output text ||
    die "EventBridge rule $name of stack $STACK_NAME does not exist: re-deploy with step-340."
  IFS=$'\t' read -r state pattern <<<"$AWS_OUT"
  [[ $state == ENABLED ]] || die "EventBridge rule $name is $state: enable it (aws events enable-rule --name $name)."
  [[ $pattern == *"aws.s3"* ]] || continue
  [[ $pattern == *"$BUCKET_NAME"* ]] || die "EventBridge rule $name does not name bucket $BUCKET_NAME: re-deploy with step-340."
  aws_lookup ResourceNotFoundException events list-targets-by-rule --rule "$name" \
    --query 'length(Targets)' --output text || true
  [[ ${AWS_OUT:-0} -ge 1 ]] || die "EventBridge rule $name has no target: re-deploy with step-340."
  info "rule $name: ENABLED, bucket $BUCKET_NAME, ${AWS_OUT} target(s)"
done
next_step step-342-test-lambda-router.sh
