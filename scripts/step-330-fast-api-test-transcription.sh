#!/usr/bin/env bash
# step-330: transcribe a sample through the server: POST /transcribe without a key must answer
# 401; with the bearer key (API_KEY, else the SSM SecureString of step-010, sent from a private
# header file) it must answer 200 with a "transcription". The sample is --file or a short WAV
# made here (espeak-ng speech, else a tone). Changes nothing in AWS.
#
# Usage: step-330-fast-api-test-transcription.sh [--file AUDIO] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
file=""
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --file)
      [[ -f ${2:-} ]] || die "--file needs an existing audio file."
      file="$2"
      shift
      ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_env SERVER_URL step-320-fast-api-launch-gpu-instances.sh
require_cmd curl "install curl"
[[ -n ${API_KEY:-} ]] || require_aws
resolve_api_key
url="${SERVER_URL%/}/transcribe"
if [[ -z $file ]]; then
  file="$(mktemp --suffix .wav 2>/dev/null || mktemp)"
  make_sample_wav "$file" "${LANGUAGE:-sv}"
fi
if [[ $DRY_RUN == 1 ]]; then
  print_call curl --silent --max-time 300 --header "@<auth-header-file>" --form "audio=@$file" "$url"
  next_step step-340-deploy-lambda-router.sh
  exit 0
fi

status="$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 30 \
  --form "audio=@$file" "$url" || true)"
[[ $status == 401 ]] || die "POST $url without a key answered ${status:-nothing}, not 401: the server must require its bearer key."
info "without a key: 401 (as it should)"

write_auth_header
response="$(curl --silent --max-time 300 --write-out '\n%{http_code}' --header "@$AUTH_HEADER_FILE" \
  --form "audio=@$file" "$url" || true)"
status="${response##*$'\n'}"
body="${response%$'\n'*}"
[[ $status == 200 ]] || die "POST $url answered ${status:-nothing}: ${body:0:300}."
[[ $body == *'"transcription"'* ]] || die "POST $url answered 200 without a transcription: ${body:0:300}."
text="$(printf '%s' "$body" | sed -n 's/.*"transcription"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
info "transcription: ${text:-<empty>}"
next_step step-340-deploy-lambda-router.sh
