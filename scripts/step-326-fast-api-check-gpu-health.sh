#!/usr/bin/env bash
# step-326: wait until the server answers GET /health with 200 (model loaded) and reports a GPU;
# prints model, device and memory. Polls every 10 s for --wait seconds (default 600; 503 means
# still loading). --allow-cpu accepts a server without a GPU. Changes nothing.
#
# The server sits in a private subnet and admits only the router, so by default the check runs
# on the instance itself (SERVER_INSTANCE_ID) with SSM Run Command against 127.0.0.1; --direct
# calls SERVER_URL from this machine instead (inside the VPC: a VPN, a bastion, a tunnel).
#
# Usage: step-326-fast-api-check-gpu-health.sh [--wait SECONDS] [--allow-cpu] [--direct]
#        [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
wait_s=600
allow_cpu=0
direct=0
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wait)
      [[ ${2:-} =~ ^[0-9]+$ ]] || die "--wait needs a number of seconds."
      wait_s="$2"
      shift
      ;;
    --allow-cpu) allow_cpu=1 ;;
    --direct) direct=1 ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_env SERVER_URL step-320-fast-api-launch-gpu-instances.sh
port="${SERVER_URL##*:}"
port="${port%%/*}"
if [[ $direct == 1 ]]; then
  require_cmd curl "install curl"
  url="${SERVER_URL%/}/health"
  if [[ $DRY_RUN == 1 ]]; then
    print_call curl --silent --max-time 5 "$url"
    next_step step-330-fast-api-test-transcription.sh
    exit 0
  fi
else
  require_env SERVER_INSTANCE_ID step-320-fast-api-launch-gpu-instances.sh
  require_aws
  url="http://127.0.0.1:$port/health on $SERVER_INSTANCE_ID"
fi

# One look at /health: sets status (HTTP code, empty without an answer) and body.
probe() {
  local answer code=0
  if [[ $direct == 1 ]]; then
    answer="$(curl --silent --max-time 5 --write-out '\n%{http_code}' "${SERVER_URL%/}/health" 2>/dev/null)" || code=$?
    [[ $code == 0 ]] || answer=$'\n'
  else
    run_on_instance "$SERVER_INSTANCE_ID" \
      "curl --silent --max-time 5 --write-out '\\n%{http_code}' http://127.0.0.1:$port/health || echo" 60
    if [[ $RUN_STATUS == DryRun ]]; then
      status=200
      body='{"status": "<dry run>", "gpu_available": true}'
      return 0
    fi
    answer="$RUN_OUTPUT"
    [[ $RUN_STATUS == Success ]] || answer=$'\n'
  fi
  status="${answer##*$'\n'}"
  body="${answer%$'\n'*}"
}

deadline=$((SECONDS + wait_s))
while :; do
  probe
  [[ $status == 200 ]] && break
  if [[ $SECONDS -ge $deadline ]]; then
    die "the server ($url) was not healthy within ${wait_s}s (last answer: ${status:-none}): check its log group (ServerLogGroupName) and the instance's console output."
  fi
  info "waiting for $url (answer: ${status:-no connection}) ..."
  sleep 10
done

field() {
  printf '%s' "$body" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"
}
info "health: $(field status), model: $(field model), device: $(field device), gpu: $(field gpu_available)"
if [[ $(field gpu_available) != true && $allow_cpu == 0 ]]; then
  die "the server ($url) is healthy but has no GPU (gpu_available is not true): check the instance type and the NVIDIA runtime."
fi
next_step step-330-fast-api-test-transcription.sh
