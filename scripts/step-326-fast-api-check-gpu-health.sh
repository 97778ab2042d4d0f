#!/usr/bin/env bash
# step-326: wait until the server at SERVER_URL answers GET /health with 200 (model loaded) and
# reports a GPU; prints model, device and memory. Polls every 10 s for --wait seconds (default
# 600; 503 means still loading). --allow-cpu accepts a server without a GPU. Changes nothing.
#
# Usage: step-326-fast-api-check-gpu-health.sh [--wait SECONDS] [--allow-cpu] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
wait_s=600
allow_cpu=0
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wait)
      [[ ${2:-} =~ ^[0-9]+$ ]] || die "--wait needs a number of seconds."
      wait_s="$2"
      shift
      ;;
    --allow-cpu) allow_cpu=1 ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_env SERVER_URL step-320-fast-api-launch-gpu-instances.sh
require_cmd curl "install curl"
url="${SERVER_URL%/}/health"
if [[ $DRY_RUN == 1 ]]; then
  print_call curl --silent --max-time 5 "$url"
  next_step step-330-fast-api-test-transcription.sh
  exit 0
fi

deadline=$((SECONDS + wait_s))
while :; do
  code=0
  body="$(curl --silent --max-time 5 --write-out '\n%{http_code}' "$url" 2>/dev/null)" || code=$?
  status="${body##*$'\n'}"
  body="${body%$'\n'*}"
  [[ $code == 0 && $status == 200 ]] && break
  if [[ $SECONDS -ge $deadline ]]; then
    die "the server at $url was not healthy within ${wait_s}s (last answer: ${status:-none}): check the instance's console log."
  fi
  info "waiting for $url (answer: ${status:-no connection}) ..."
  sleep 10
done

field() {
  printf '%s' "$body" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"
}
info "health: $(field status), model: $(field model), device: $(field device), gpu: $(field gpu_available)"
if [[ $(field gpu_available) != true && $allow_cpu == 0 ]]; then
  die "the server at $url is healthy but has no GPU (gpu_available is not true): check the instance type and the NVIDIA runtime."
fi
next_step step-330-fast-api-test-transcription.sh
