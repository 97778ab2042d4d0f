#!/usr/bin/env bash
# step-011: validate the permissions: who is calling, the server key's SSM SecureString
# (step-010), and, once the stack is deployed, its IAM roles: each exists and no inline policy
# grants a wildcard action ("*" or "service:*"). Before the stack exists the roles are skipped
# with a note (step-020/340 create them). Changes nothing.
#
# Usage: step-011-validate-iam-permissions.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env API_KEY_PARAMETER step-000-setup-configuration.sh
require_env STACK_NAME step-000-setup-configuration.sh
require_aws

if aws_lookup 'ParameterNotFound' ssm get-parameter --name "$API_KEY_PARAMETER" \
  --query Parameter.Type --output text; then
  [[ $AWS_OUT == SecureString ]] || die "SSM parameter $API_KEY_PARAMETER is a $AWS_OUT, not a SecureString: run step-010 with --rotate."
  info "server key: $API_KEY_PARAMETER is a SecureString"
elif [[ $DRY_RUN == 0 ]]; then
  die "SSM parameter $API_KEY_PARAMETER does not exist: run $(step_path step-010-setup-iam-permissions.sh) first."
fi

read_stack
if [[ -z $STACK_STATUS ]]; then
  info "stack $STACK_NAME is not deployed yet: its IAM roles are checked once step-020/340 deploy it"
else
  roles="$(stack_resources AWS::IAM::Role)"
  count=0
  for role in $roles; do
    # Listing a missing role's policies fails with NoSuchEntity: existence and policy names in
    # one call. Standalone AWS::IAM::Policy resources are inline policies of the roles they name.
    aws_lookup 'NoSuchEntity' iam list-role-policies --role-name "$role" \
      --query PolicyNames --output text ||
      die "IAM role $role of stack $STACK_NAME does not exist: re-deploy with step-340."
    for policy in $AWS_OUT; do
      [[ $policy == None ]] && continue
      aws_lookup 'NoSuchEntity' iam get-role-policy --role-name "$role" --policy-name "$policy" \
        --query PolicyDocument --output json || true
      # Compact the document (moto answers it as a Python repr: quotes normalised too).
      if printf '%s' "$AWS_OUT" | tr -d " \n\\\\" | tr "'" '"' | grep -Eq '"Action":(\[[^]]*)?"([a-z0-9-]+:)?\*"'; then
        die "IAM role $role (policy $policy) grants a wildcard action: fix template.yaml and re-deploy."
      fi
    done
    count=$((count + 1))
  done
  info "stack $STACK_NAME ($STACK_STATUS): $count IAM role(s) present, no wildcard actions"
fi
next_step step-020-create-sqs-resources.sh
