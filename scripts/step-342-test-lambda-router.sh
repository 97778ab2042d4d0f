#!/usr/bin/env bash
# step-342: end-to-end test of the router: uploads a sample chunk (--file or a short WAV made
# here) as AUDIO_PREFIX smoke-<time>/chunk-0000.wav and waits (--timeout, default 300 s) for
# TRANSCRIPT_PREFIX smoke-<time>/chunk-0000.json. With the server down the router queues the
# chunk instead: --allow-queued then accepts a message in the work queue as success. On a
# timeout it reports the queue and router DLQ depths. Leaves the smoke objects in the bucket.
#
# Usage: step-342-test-lambda-router.sh [--file AUDIO] [--timeout SECONDS] [--allow-queued]
#        [--session ID] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
file=""
timeout_s=300
allow_queued=0
session="smoke-$(date -u +%Y%m%dT%H%M%S)"
set -- "${REST_ARGS[@]+"${REST_ARGS[@]}"}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --file)
      [[ -f ${2:-} ]] || die "--file needs an existing audio file."
      file="$2"
      shift
      ;;
    --timeout)
      [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds."
      timeout_s="$2"
      shift
      ;;
    --session)
      [[ ${2:-} =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "--session needs an id of 1-64 of A-Z a-z 0-9 _ -."
      session="$2"
      shift
      ;;
    --allow-queued) allow_queued=1 ;;
    *) die "unknown argument '$1' (see $(basename "$0") --help)." ;;
  esac
  shift
done
load_env
require_env BUCKET_NAME step-000-setup-configuration.sh
require_env ROUTER_FUNCTION_ARN step-340-deploy-lambda-router.sh
require_aws

if [[ -z $file ]]; then
  file="$(mktemp)"
  make_sample_wav "$file" "${LANGUAGE:-sv}"
fi
ext="${file##*.}"
[[ $ext =~ ^(wav|flac|mp3|m4a|ogg|opus|webm)$ ]] || ext=wav
audio_key="${AUDIO_PREFIX:-audio/}$session/chunk-0000.$ext"
transcript_key="${TRANSCRIPT_PREFIX:-transcripts/}$session/chunk-0000.json"
queued_before=0
if [[ $allow_queued == 1 && -n ${QUEUE_URL:-} ]]; then
  aws_lookup '^$' sqs get-queue-attributes --queue-url "$QUEUE_URL" \
    --attribute-names ApproximateNumberOfMessages --query Attributes.ApproximateNumberOfMessages \
    --output text || true
  queued_before="${AWS_OUT:-0}"
fi
aws_run s3api put-object --bucket "$BUCKET_NAME" --key "$audio_key" --body "$file"
info "uploaded s3://$BUCKET_NAME/$audio_key; waiting up to ${timeout_s}s for s3://$BUCKET_NAME/$transcript_key"

deadline=$((SECONDS + timeout_s))
while :; do
  if aws_lookup '\(404\)|Not Found|NoSuchKey' s3api head-object --bucket "$BUCKET_NAME" \
    --key "$transcript_key" --query ContentLength --output text; then
    info "transcript written: s3://$BUCKET_NAME/$transcript_key (${AWS_OUT} bytes)"
    break
  fi
  [[ $DRY_RUN == 1 ]] && break
  if [[ $allow_queued == 1 && -n ${QUEUE_URL:-} ]]; then
    aws_lookup '^$' sqs get-queue-attributes --queue-url "$QUEUE_URL" \
      --attribute-names ApproximateNumberOfMessages --query Attributes.ApproximateNumberOfMessages \
      --output text || true
    if [[ ${AWS_OUT:-0} -gt $queued_before ]]; then
      info "the router queued the chunk for the batch worker (server down or busy): accepted (--allow-queued)"
      break
    fi
  fi
  if [[ $SECONDS -ge $deadline ]]; then
    detail=""
    for pair in "work queue:${QUEUE_URL:-}" "router DLQ:${ROUTER_DEAD_LETTER_QUEUE_URL:-}"; do
      url="${pair#*:}"
      [[ -n $url ]] || continue
      aws_lookup '^$' sqs get-queue-attributes --queue-url "$url" \
        --attribute-names ApproximateNumberOfMessages \
        --query Attributes.ApproximateNumberOfMessages --output text || true
      detail+=", ${pair%%:*} holds ${AWS_OUT:-?}"
    done
    die "no transcript for s3://$BUCKET_NAME/$audio_key within ${timeout_s}s${detail}: see the router's logs (queued chunks wait for the batch worker; --allow-queued accepts that)."
  fi
  sleep 1
done
next_step step-999-teardown.sh
