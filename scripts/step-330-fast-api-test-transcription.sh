#!/usr/bin/env bash
# step-330: transcribe a sample through the server: POST /transcribe without a key must answer
# 401; with the bearer key it must answer 200 with a "transcription". Changes nothing in AWS.
#
# By default the test runs on the server instance (SERVER_INSTANCE_ID) with SSM Run Command
# against 127.0.0.1 (the server admits only the router): the instance reads the key from SSM
# with its own role and writes a 2 s tone, so the key never leaves it. --direct calls SERVER_URL
# from this machine instead (inside the VPC), with the key from API_KEY or the SSM SecureString
# of step-010 sent from a private header file, and --file AUDIO or a short WAV made here
# (espeak-ng speech, else a tone).
#
# Usage: step-330-fast-api-test-transcription.sh [--direct [--file AUDIO]] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
file=""
direct=0
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --file)
      [[ -f ${2:-} ]] || die "--file needs an existing audio file."
      file="$2"
      shift
      ;;
    --direct) direct=1 ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_env SERVER_URL step-320-fast-api-launch-gpu-instances.sh
[[ -z $file || $direct == 1 ]] || die "--file needs --direct (on the instance the sample is made there)."

# Prints the transcription of a 200 answer, or fails with one sentence.
report() {
  local status="$1" body="$2" where="$3"
  [[ $status == 200 ]] || die "POST $where answered ${status:-nothing}: ${body:0:300}."
  [[ $body == *'"transcription"'* ]] || die "POST $where answered 200 without a transcription: ${body:0:300}."
  local text
  text="$(printf '%s' "$body" | sed -n 's/.*"transcription"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
  info "transcription: ${text:-<empty>}"
}

if [[ $direct == 0 ]]; then
  require_env SERVER_INSTANCE_ID step-320-fast-api-launch-gpu-instances.sh
  require_env API_KEY_PARAMETER step-000-setup-configuration.sh
  require_aws
  port="${SERVER_URL##*:}"
  port="${port%%/*}"
  where="http://127.0.0.1:$port/transcribe on $SERVER_INSTANCE_ID"
  # Runs on the instance (bash via Run Command): the key stays there, in a 0600 header file.
  script="set -eu
key=\$(aws ssm get-parameter --region $AWS_REGION --name $API_KEY_PARAMETER --with-decryption --query Parameter.Value --output text)
wav=\$(mktemp --suffix .wav)
python3 -c 'import math, struct, sys, wave
w = wave.open(sys.argv[1], \"wb\"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
w.writeframes(b\"\".join(struct.pack(\"<h\", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(32000)))' \"\$wav\"
noauth=\$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 30 --form audio=@\$wav http://127.0.0.1:$port/transcribe || true)
header=\$(umask 077 && mktemp)
printf 'Authorization: Bearer %s\\n' \"\$key\" >\"\$header\"
answer=\$(curl --silent --max-time 300 --write-out '\\n%{http_code}' --header @\$header --form audio=@\$wav http://127.0.0.1:$port/transcribe || true)
rm -f \"\$header\" \"\$wav\"
echo \"noauth=\$noauth\"
printf '%s\\n' \"\$answer\""
  run_on_instance "$SERVER_INSTANCE_ID" "$script" 330
  if [[ $RUN_STATUS == DryRun ]]; then
    next_step step-340-deploy-lambda-router.sh
    exit 0
  fi
  [[ $RUN_STATUS == Success ]] || die "the test on $SERVER_INSTANCE_ID ended $RUN_STATUS: see aws ssm list-command-invocations --details."
  first="${RUN_OUTPUT%%$'\n'*}"
  [[ $first == noauth=401 ]] || die "POST $where without a key answered ${first#noauth=}, not 401: the server must require its bearer key."
  info "without a key: 401 (as it should)"
  answer="${RUN_OUTPUT#*$'\n'}"
  answer="${answer%$'\n'}"
  report "${answer##*$'\n'}" "${answer%$'\n'*}" "$where"
  next_step step-340-deploy-lambda-router.sh
  exit 0
fi
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
report "${response##*$'\n'}" "${response%$'\n'*}" "$url"
next_step step-340-deploy-lambda-router.sh
