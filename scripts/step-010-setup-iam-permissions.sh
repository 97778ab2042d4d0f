#!/usr/bin/env bash
# step-010: the permissions that live outside the stack.
#
# The IAM roles and policies (router, launcher, worker instance role and profile, the PassRole
# grant) are resources of template.yaml: the SAM stack owns them, step-020/340 deploy them and
# step-011 validates them; this step creates no second copy. What CloudFormation cannot hold are
# the secrets: the server's bearer key as an SSM SecureString named API_KEY_PARAMETER (the
# router's and the server's policies may read exactly that name) and, when
# WEBHOOK_SECRET_PARAMETER is set, the webhook signing key (the router's and the worker's).
# Create-if-missing: an existing parameter is kept unless --rotate. A value is API_KEY /
# WEBHOOK_SECRET from the environment when given (never the example's placeholder), else 32
# random bytes; never printed, never on a command line (the AWS CLI reads a private temp file).
#
# Usage: step-010-setup-iam-permissions.sh [--rotate] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
rotate=0
for arg in "${REST_ARGS[@]+"${REST_ARGS[@]}"}"; do
  case "$arg" in
    --rotate) rotate=1 ;;
    *) die "unknown argument '$arg' (see $(basename "$0") --help)." ;;
  esac
done
load_env
require_env API_KEY_PARAMETER step-000-setup-configuration.sh
require_aws

secret_input=""
trap 'rm -f "$secret_input"' EXIT
# Creates (or with --rotate replaces) one SecureString: NAME, VALUE (empty: 32 random bytes),
# DESCRIPTION, WHAT (for the messages). The value goes to the AWS CLI in a private temporary
# file, never on a command line.
store_secret() {
  local name="$1" value="$2" description="$3" what="$4"
  if aws_lookup 'ParameterNotFound' ssm get-parameter --name "$name" \
    --query Parameter.Type --output text; then
    if [[ $AWS_OUT != SecureString && $rotate == 0 ]]; then
      die "SSM parameter $name is a $AWS_OUT, not a SecureString: re-run with --rotate to replace it."
    fi
    if [[ $rotate == 0 ]]; then
      info "$what: SSM SecureString $name exists (kept; --rotate replaces it)"
      return 0
    fi
  fi
  if [[ -z $value ]]; then
    value="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  fi
  local overwrite=false
  [[ $rotate == 1 ]] && overwrite=true
  secret_input="$(umask 077 && mktemp)"
  printf '{"Name": "%s", "Type": "SecureString", "Overwrite": %s, "Description": "%s", "Value": "%s"}\n' \
    "$name" "$overwrite" "$description" "$value" >"$secret_input"
  aws_run ssm put-parameter --cli-input-json "file://$secret_input"
  rm -f "$secret_input"
  info "$what: stored as SSM SecureString $name"
}

key="${API_KEY:-}"
[[ $key == change-me-local-only ]] && key=""
store_secret "$API_KEY_PARAMETER" "$key" "Bearer key of the Smart Transcription Router server" "server key"
# The webhook signing key (template.yaml WebhookSecretParameterName): without it the router and
# the worker send no webhooks, not even a manifest's callback_url.
if [[ -n ${WEBHOOK_SECRET_PARAMETER:-} ]]; then
  store_secret "$WEBHOOK_SECRET_PARAMETER" "${WEBHOOK_SECRET:-}" \
    "Webhook signing key of the Smart Transcription Router" "webhook signing key"
fi
next_step step-011-validate-iam-permissions.sh
