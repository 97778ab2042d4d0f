#!/usr/bin/env bash
# step-340: build and deploy template.yaml as stack STACK_NAME (sam build + sam deploy): the
# private network, the router Lambda, its EventBridge rule, the queues, the idempotency table,
# the launcher, the worker launch template, the server's network interface, the alarms and every
# IAM role. Parameters come from .env (BUCKET_NAME -> BucketName, AUDIO_PREFIX -> AudioPrefix,
# VPC_CIDR -> VpcCidr, ALARM_EMAIL -> AlarmEmail, ...; scripts/lib/common.sh PARAMETER_MAP; only
# those the template declares; CFN_PARAM_<Name>=value for any other). A deploy without changes
# succeeds, so it is safe to run again. Writes the stack outputs to .env (SERVER_URL, the
# server's private address, among them).
#
# Usage: step-340-deploy-lambda-router.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env STACK_NAME step-000-setup-configuration.sh
require_env BUCKET_NAME step-000-setup-configuration.sh
[[ -f $ROOT/template.yaml ]] || die "$ROOT/template.yaml is missing: run this from a complete checkout."
require_aws
require_sam
if [[ -z ${API_KEY:-} ]]; then
  aws_lookup ParameterNotFound ssm get-parameter --name "$API_KEY_PARAMETER" --query Parameter.Name \
    --output text || [[ $DRY_RUN == 1 ]] ||
    die "SSM parameter $API_KEY_PARAMETER does not exist: run $(step_path step-010-setup-iam-permissions.sh) first."
fi

read_stack
if [[ $STACK_STATUS == *_IN_PROGRESS ]]; then
  die "stack $STACK_NAME is $STACK_STATUS: wait for it to finish and run this step again."
fi
deploy_stack
read_stack
record_stack_outputs
info "stack $STACK_NAME: ${STACK_STATUS:-deployed}"
next_step step-341-configure-eventbridge-trigger.sh
