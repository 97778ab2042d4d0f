#!/usr/bin/env bash
# drain-now: drain the work queue now instead of at the launcher's next schedule (midnight):
# invokes the launcher Lambda (the stack output LauncherFunctionName, or --function NAME) with
# {"action": "drain"}; it launches a batch instance when the queue holds work and none is
# pending or running (P15), and its answer (visible messages, instances launched) is printed.
# A running transcription server with QUEUE_URL set drains the queue by itself (its drainer,
# docs/design.md §1); this is for when it is down, busy or has DRAIN_ENABLED=false.
#
# Usage: drain-now.sh [--function NAME] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
function_name=""
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --function)
      [[ -n ${2:-} ]] || die "--function needs the launcher function's name."
      function_name="$2"
      shift
      ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_aws

if [[ -z $function_name ]]; then
  require_env STACK_NAME step-000-setup-configuration.sh
  read_stack
  function_name="$(stack_output LauncherFunctionName)"
  if [[ -z $function_name || $function_name == None ]]; then
    [[ $DRY_RUN == 1 ]] || die "stack $STACK_NAME has no LauncherFunctionName output: deploy template.yaml with $(step_path step-340-deploy-lambda-router.sh) first."
    function_name="<LauncherFunctionName of $STACK_NAME>"
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# fileb:// hands the JSON over as it is, in the AWS CLI v1 and v2 alike.
printf '%s' '{"action": "drain"}' >"$work/payload.json"
aws_run lambda invoke --function-name "$function_name" --payload "fileb://$work/payload.json" \
  "$work/answer.json"
if [[ $DRY_RUN == 1 ]]; then
  info "(dry run: the launcher was not invoked)"
  exit 0
fi
answer="$(cat "$work/answer.json")"
if [[ $AWS_OUT == *FunctionError* ]]; then
  die "the launcher failed: ${answer:-no answer} (see its log group; Lambda retries asynchronous runs only)."
fi
info "launcher $function_name answered: $answer"
