#!/usr/bin/env bash
# step-001: check .env before anything is created: every value well-formed, a region, working
# AWS credentials, and the bucket reachable. Lists every problem, then fails with one sentence;
# changes nothing, so it can run any time.
#
# Usage: step-001-validate-configuration.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env

problems=0
problem() {
  echo "  - $*" >&2
  problems=$((problems + 1))
}

check() {
  local name="$1" regex="$2" hint="$3" value
  value="${!name:-}"
  if [[ -z $value ]]; then
    problem "$name is empty ($hint)."
  elif [[ ! $value =~ $regex ]]; then
    problem "$name='$value' is not valid ($hint)."
  fi
}

check AWS_REGION '^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$' 'an AWS region such as eu-north-1'
check BUCKET_NAME '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' '3-63 of a-z 0-9 . -'
check STACK_NAME '^[A-Za-z][A-Za-z0-9-]{0,127}$' 'a CloudFormation stack name'
check AUDIO_PREFIX '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$' 'a key prefix ending in /'
check TRANSCRIPT_PREFIX '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$' 'a key prefix ending in /'
check LANGUAGE '^(auto|[a-z]{2,3})$' "auto or a code such as sv or en"
check DEVICE '^(auto|cpu|cuda)$' 'auto, cpu or cuda'
check FORCE_QUEUE '^(true|false)$' 'true or false'
check ECR_REPOSITORY '^[a-z0-9]+([._/-][a-z0-9]+)*$' 'an ECR repository name'
check SERVER_INSTANCE_TYPE '^[a-z0-9-]+\.[a-z0-9]+$' 'an EC2 instance type such as g4dn.xlarge'
for name in MAX_UPLOAD_BYTES MAX_AUDIO_SECONDS SERVER_PORT; do
  check "$name" '^[1-9][0-9]*$' 'a positive whole number'
done
if [[ -n ${AUDIO_PREFIX:-} && -n ${TRANSCRIPT_PREFIX:-} ]]; then
  if [[ $AUDIO_PREFIX == "$TRANSCRIPT_PREFIX"* || $TRANSCRIPT_PREFIX == "$AUDIO_PREFIX"* ]]; then
    problem "AUDIO_PREFIX and TRANSCRIPT_PREFIX nest ('$AUDIO_PREFIX', '$TRANSCRIPT_PREFIX'): keep them apart."
  fi
fi
if [[ -z ${API_KEY:-} ]]; then
  check API_KEY_PARAMETER '^/[A-Za-z0-9_./-]+$' 'the SSM parameter name of the server key, such as /transcription/api-key'
else
  warn "API_KEY is set in $(basename "$ENV_FILE"): in AWS the key belongs in SSM (API_KEY_PARAMETER; step-010 stores it)."
fi
if [[ -n ${SERVER_URL:-} && ! $SERVER_URL =~ ^https?://[^/[:space:]]+(/.*)?$ ]]; then
  problem "SERVER_URL='$SERVER_URL' is not an http(s) URL."
fi
# The stack's VPC: a private /16 and nothing wider (template.yaml's VpcCidr pattern, the same
# regular expression): 0.0.0.0/1, ::/0 or a public range are refused here, before any deploy.
if [[ -n ${VPC_CIDR:-} && ! $VPC_CIDR =~ $VPC_CIDR_PATTERN ]]; then
  problem "VPC_CIDR='$VPC_CIDR' is not a private /16 (10.x.0.0/16, 172.16-31.x.0.0/16 or 192.168.0.0/16): the stack's network is never public or wider."
fi
if [[ -n ${SERVER_ALLOWED_CIDR:-} ]]; then
  warn "SERVER_ALLOWED_CIDR is no longer used: the server's port admits only the router's security group."
fi
if [[ -n ${WEBHOOK_URL:-} ]]; then
  [[ $WEBHOOK_URL =~ ^https://[^[:space:]]+$ ]] || problem "WEBHOOK_URL='$WEBHOOK_URL' is not an https URL."
  [[ -n ${WEBHOOK_SECRET_PARAMETER:-} ]] || problem "WEBHOOK_URL is set but WEBHOOK_SECRET_PARAMETER is empty: webhooks are always signed (step-010 creates the key)."
fi
if [[ -n ${WEBHOOK_SECRET_PARAMETER:-} ]]; then
  check WEBHOOK_SECRET_PARAMETER '^/[A-Za-z0-9_./-]+$' 'an SSM parameter name such as /transcription/webhook-secret'
fi
if [[ -n ${ALARM_EMAIL:-} && ! $ALARM_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]]; then
  problem "ALARM_EMAIL='$ALARM_EMAIL' is not an e-mail address."
fi
[[ -z ${MONTHLY_BUDGET_USD:-} ]] || check MONTHLY_BUDGET_USD '^[1-9][0-9]*$' 'a whole number of US dollars'
if [[ -n ${QUEUE_AGE_ALARM_S:-} ]]; then
  if [[ ! $QUEUE_AGE_ALARM_S =~ ^[0-9]+$ ]] || ((QUEUE_AGE_ALARM_S < 3600 || QUEUE_AGE_ALARM_S > 345600)); then
    problem "QUEUE_AGE_ALARM_S='$QUEUE_AGE_ALARM_S' is not 3600-345600 seconds (the work queue keeps messages 4 days)."
  fi
fi
if [[ -n ${LOG_RETENTION_DAYS:-} && " $LOG_RETENTION_VALUES " != *" $LOG_RETENTION_DAYS "* ]]; then
  problem "LOG_RETENTION_DAYS='$LOG_RETENTION_DAYS' is not one of CloudWatch Logs' values ($LOG_RETENTION_VALUES)."
fi
if [[ $problems -gt 0 ]]; then
  die "$problems setting(s) in $ENV_FILE need fixing (listed above): edit it or re-run step-000."
fi
info "settings: ok"

require_aws
info "AWS account: $ACCOUNT_ID, region: $AWS_REGION${AWS_ENDPOINT_URL:+, endpoint: $AWS_ENDPOINT_URL}"
if aws_lookup '\((404|NoSuchBucket)\)|Not Found' s3api head-bucket --bucket "$BUCKET_NAME"; then
  info "bucket s3://$BUCKET_NAME: reachable"
elif [[ $DRY_RUN == 0 ]]; then
  if [[ ${CREATE_BUCKET:-false} == true ]]; then
    info "bucket s3://$BUCKET_NAME: does not exist yet; the stack creates it (CREATE_BUCKET=true)"
  else
    warn "bucket s3://$BUCKET_NAME does not exist: create it (aws s3 mb) or set CREATE_BUCKET=true."
  fi
fi
next_step step-010-setup-iam-permissions.sh
