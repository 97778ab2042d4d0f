#!/usr/bin/env bash
# step-010: the permissions that live outside the stack.
#
# The IAM roles and policies (router, launcher, worker instance role and profile, the PassRole
# grant) are resources of template.yaml: the SAM stack owns them, step-020/340 deploy them and
# step-011 validates them; this step creates no second copy. What CloudFormation cannot hold is
# the server's bearer key: this step stores it as an SSM SecureString named API_KEY_PARAMETER
# (the router's and the server's policies may read exactly that name). Create-if-missing: an
# existing parameter is kept unless --rotate. The key is API_KEY from the environment when given
# (never the example's placeholder), else 32 random bytes; it is never printed and never put on
# a command line (the AWS CLI reads it from a private temporary file).
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

if aws_lookup 'ParameterNotFound' ssm get-parameter --name "$API_KEY_PARAMETER" \
  --query Parameter.Type --output text; then
  if [[ $AWS_OUT != SecureString && $rotate == 0 ]]; then
    die "SSM parameter $API_KEY_PARAMETER is a $AWS_OUT, not a SecureString: re-run with --rotate to replace it."
  fi
  if [[ $rotate == 0 ]]; then
    info "server key: SSM SecureString $API_KEY_PARAMETER exists (kept; --rotate replaces it)"
    next_step step-011-validate-iam-permissions.sh
    exit 0
  fi
fi

key="${API_KEY:-}"
if [[ -z $key || $key == change-me-local-only ]]; then
  key="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
fi
overwrite=false
[[ $rotate == 1 ]] && overwrite=true
umask 077
input="$(mktemp)"
trap 'rm -f "$input"' EXIT
printf '{"Name": "%s", "Type": "SecureString", "Overwrite": %s, "Description": "%s", "Value": "%s"}\n' \
  "$API_KEY_PARAMETER" "$overwrite" "Bearer key of the Smart Transcription Router server" "$key" >"$input"
aws_run ssm put-parameter --cli-input-json "file://$input"
info "server key: stored as SSM SecureString $API_KEY_PARAMETER"
next_step step-011-validate-iam-permissions.sh
