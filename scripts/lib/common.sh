# shellcheck shell=bash
# Shared by scripts/step-*.sh (sourced, never run): .env loading and writing, --dry-run, the
# prerequisite checks (each failing with one sentence), AWS CLI calls that honour AWS_REGION and
# AWS_ENDPOINT_URL (passed as --endpoint-url: the AWS CLI v1 ignores the variable for SQS), the
# SAM stack's outputs and the closing "Next:" line.
#
# Conventions of every step:
#   --dry-run     print the AWS/docker/sam calls that change something, make none of them; calls
#                 that only look (describe, get) are printed too and read as "not there yet", so a
#                 dry run shows the full path of a first run and needs no credentials.
#   --env-file F  use F instead of .env at the repository root (also ENV_FILE=F).
#   -h, --help    print the script's header comment.
# The environment overrides .env (as in the code's settings), so `BUCKET_NAME=x scripts/...` works.
# AWS_CLI and SAM_CLI name other binaries for `aws` and `sam`; SAM_BUILD_DIR the build output
# (default .aws-sam/build). tests/scripts/test_rehearsal.py uses them to run every step against
# moto with a documented SAM stand-in.

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$SCRIPTS_DIR/.." && pwd)"
ENV_FILE="${ENV_FILE:-$ROOT/.env}"
DRY_RUN="${DRY_RUN:-0}"
AWS_OUT=""
REST_ARGS=()
# Dry-run lines go to the caller's stdout even from inside $(...).
exec 3>&1

die() {
  echo "error: $*" >&2
  exit 1
}

info() {
  echo "$*"
}

warn() {
  echo "warning: $*" >&2
}

usage() {
  # The header comment of the running step (everything after the shebang up to the first blank).
  sed -n '2,/^$/{s/^# \{0,1\}//;/^set -euo/d;p;}' "$0"
}

# Parses the shared flags; anything else is left in REST_ARGS for the step.
parse_common_args() {
  REST_ARGS=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      --env-file)
        [[ $# -ge 2 ]] || die "--env-file needs a path."
        ENV_FILE="$2"
        shift
        ;;
      --env-file=*) ENV_FILE="${1#*=}" ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) REST_ARGS+=("$1") ;;
    esac
    shift
  done
  if [[ $DRY_RUN == 1 ]]; then
    info "(dry run: AWS, docker and sam calls are printed, not made)"
  fi
}

# Refuses flags a step does not know, with one sentence.
no_extra_args() {
  if [[ ${#REST_ARGS[@]} -gt 0 ]]; then
    die "unknown argument '${REST_ARGS[0]}' (see $(basename "$0") --help)."
  fi
}

step_path() {
  echo "scripts/$1"
}

next_step() {
  echo "Next: $(step_path "$1")"
}

# ---------------------------------------------------------------------------- .env

# Reads KEY=VALUE lines without executing anything; surrounding quotes are removed. A variable
# already set in the environment wins over the file.
load_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: run $(step_path step-000-setup-configuration.sh) first."
  local line key value
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      die "$ENV_FILE has a line that is not KEY=VALUE: '$line'."
    fi
    key="${BASH_REMATCH[2]}"
    value="$(strip_quotes "${BASH_REMATCH[3]}")"
    if [[ -z ${!key+set} ]]; then
      printf -v "$key" '%s' "$value"
      # shellcheck disable=SC2163 # the variable named by $key
      export "$key"
    fi
  done <"$ENV_FILE"
  AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  export AWS_REGION
}

strip_quotes() {
  local value="$1"
  if [[ ${#value} -ge 2 ]]; then
    if [[ ${value:0:1} == '"' && ${value: -1} == '"' ]] || [[ ${value:0:1} == "'" && ${value: -1} == "'" ]]; then
      value="${value:1:${#value}-2}"
    fi
  fi
  printf '%s' "$value"
}

# Records a step's output (queue URL, repository URI...) in .env and in this process.
set_env_value() {
  local key="$1" value="$2" current=""
  if [[ -f $ENV_FILE ]]; then
    current="$(sed -n "s/^${key}=//p" "$ENV_FILE" | tail -n 1)"
  fi
  printf -v "$key" '%s' "$value"
  # shellcheck disable=SC2163 # the variable named by $key
  export "$key"
  if [[ -f $ENV_FILE ]] && grep -q "^${key}=" "$ENV_FILE" && [[ "$(strip_quotes "$current")" == "$value" ]]; then
    return 0
  fi
  if [[ $DRY_RUN == 1 ]]; then
    info "DRY-RUN: would set ${key}=${value} in $ENV_FILE"
    return 0
  fi
  local tmp
  tmp="$(mktemp "${ENV_FILE}.XXXXXX")"
  if [[ -f $ENV_FILE ]]; then
    awk -v key="$key" -v value="$value" '
      BEGIN { done = 0 }
      $0 ~ "^" key "=" { if (!done) { print key "=" value; done = 1 }; next }
      { print }
      END { if (!done) print key "=" value }
    ' "$ENV_FILE" >"$tmp"
  else
    printf '%s=%s\n' "$key" "$value" >"$tmp"
  fi
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
  info "recorded ${key}=${value} in $(basename "$ENV_FILE")"
}

# Fails with one sentence when an earlier step's output is missing.
require_env() {
  local name="$1" step="$2"
  if [[ -z ${!name:-} ]]; then
    die "$name is not set in $(basename "$ENV_FILE"): run $(step_path "$step") first."
  fi
}

# ---------------------------------------------------------------------------- tools

require_cmd() {
  local cmd="$1" hint="$2"
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is not installed: $hint."
}

require_region() {
  [[ -n ${AWS_REGION:-} ]] || die "no AWS region is set: put AWS_REGION in $(basename "$ENV_FILE") (step-000) or the environment."
}

# The AWS CLI with the region and the endpoint of this run.
aws_base() {
  AWS_BASE=("${AWS_CLI:-aws}" --region "$AWS_REGION")
  if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
    AWS_BASE+=(--endpoint-url "$AWS_ENDPOINT_URL")
  fi
}

# Region, the aws CLI and working credentials (skipped in a dry run, which calls nothing).
require_aws() {
  require_region
  aws_base
  ACCOUNT_ID="<account-id>"
  if [[ $DRY_RUN == 1 ]]; then
    print_call "${AWS_BASE[@]}" sts get-caller-identity
    return 0
  fi
  require_cmd "${AWS_CLI:-aws}" "install the AWS CLI (pip install awscli) and try again"
  local err
  if ! ACCOUNT_ID="$("${AWS_BASE[@]}" sts get-caller-identity --query Account --output text 2>&1)"; then
    err="$(printf '%s\n' "$ACCOUNT_ID" | grep -v '^$' | tail -n 1)"
    die "AWS credentials are missing or invalid (aws sts get-caller-identity failed: ${err})."
  fi
}

require_docker() {
  [[ $DRY_RUN == 1 ]] && return 0
  require_cmd docker "install Docker to build and push the server image"
  docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed): start Docker and try again."
}

require_sam() {
  [[ $DRY_RUN == 1 ]] && return 0
  require_cmd "${SAM_CLI:-sam}" "install the AWS SAM CLI (pip install aws-sam-cli) to build and deploy template.yaml"
}

print_call() {
  local out="DRY-RUN:" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+=" $arg"
    else
      out+=" $(printf '%q' "$arg")"
    fi
  done
  echo "$out" >&3
}

# Runs a call that changes something; in a dry run prints it instead. Output in AWS_OUT.
run_tool() {
  AWS_OUT=""
  if [[ $DRY_RUN == 1 ]]; then
    print_call "$@"
    return 0
  fi
  local errfile
  errfile="$(mktemp)"
  if ! AWS_OUT="$("$@" 2>"$errfile")"; then
    local err
    err="$(grep -v '^$' "$errfile" | tail -n 1)"
    rm -f "$errfile"
    die "$(basename "$1") ${2:-} ${3:-} failed: ${err:-no error message}."
  fi
  rm -f "$errfile"
}

aws_run() {
  aws_base
  run_tool "${AWS_BASE[@]}" "$@"
}

# A look-up that may find nothing: returns 0 (found, output in AWS_OUT) or 1 (the error matched
# NOT_FOUND_REGEX); any other error (access denied, throttling...) stops the step. Never reads an
# error as "missing". A dry run prints the call and returns 1.
aws_lookup() {
  local pattern="$1"
  shift
  aws_base
  AWS_OUT=""
  if [[ $DRY_RUN == 1 ]]; then
    print_call "${AWS_BASE[@]}" "$@"
    return 1
  fi
  local errfile err
  errfile="$(mktemp)"
  if AWS_OUT="$("${AWS_BASE[@]}" "$@" 2>"$errfile")"; then
    rm -f "$errfile"
    return 0
  fi
  err="$(grep -v '^$' "$errfile" | tail -n 1)"
  rm -f "$errfile"
  if [[ $err =~ $pattern ]]; then
    return 1
  fi
  die "aws $1 $2 failed: ${err:-no error message}."
}

# ---------------------------------------------------------------------------- the SAM stack

STACK_NOT_FOUND='does not exist'

# Sets STACK_STATUS ("" when the stack does not exist) and STACK_OUTPUTS ("Key<TAB>Value" lines).
read_stack() {
  STACK_STATUS=""
  STACK_OUTPUTS=""
  # One call: a "StackStatus<TAB>status" line, then one "Key<TAB>Value" line per output.
  if aws_lookup "$STACK_NOT_FOUND" cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "[Stacks[0].[['StackStatus', StackStatus]], Stacks[0].Outputs[].[OutputKey, OutputValue]][]" \
    --output text; then
    STACK_STATUS="$(printf '%s\n' "$AWS_OUT" | awk -F '\t' '$1 == "StackStatus" { print $2; exit }')"
    STACK_OUTPUTS="$AWS_OUT"
  fi
}

stack_ready() {
  [[ $STACK_STATUS =~ ^(CREATE_COMPLETE|UPDATE_COMPLETE|UPDATE_ROLLBACK_COMPLETE)$ ]]
}

# The value of an output of the stack (read_stack first); empty when absent.
stack_output() {
  printf '%s\n' "$STACK_OUTPUTS" | awk -F '\t' -v key="$1" '$1 == key { print $2; exit }'
}

# Physical ids of the stack's resources of one type (e.g. AWS::IAM::Role), one a line.
stack_resources() {
  AWS_OUT=""
  aws_lookup "$STACK_NOT_FOUND" cloudformation list-stack-resources --stack-name "$STACK_NAME" \
    --query "StackResourceSummaries[?ResourceType=='$1'].PhysicalResourceId" --output text || true
  printf '%s' "$AWS_OUT" | tr '\t' '\n' | grep -v '^None$' | grep -v '^$' || true
}

# Template parameters and the .env settings that feed them. Only parameters that template.yaml
# declares are passed; any other parameter can be given as CFN_PARAM_<Name>=value in .env.
PARAMETER_MAP="
BucketName BUCKET_NAME
CreateBucket CREATE_BUCKET
AudioPrefix AUDIO_PREFIX
TranscriptPrefix TRANSCRIPT_PREFIX
ApiKeyParameterName API_KEY_PARAMETER
ForceQueue FORCE_QUEUE
RouterReservedConcurrency ROUTER_CONCURRENCY
EventBusName EVENT_BUS_NAME
WebhookUrl WEBHOOK_URL
WebhookSecretParameterName WEBHOOK_SECRET_PARAMETER
ModelId MODEL_ID
Language LANGUAGE
WorkerImageRepository ECR_REPOSITORY
WorkerImageTag IMAGE_TAG
WorkerIdleExitSeconds IDLE_EXIT_S
WorkerMaxRuntimeSeconds MAX_RUNTIME_S
LaunchSchedule LAUNCH_SCHEDULE
InstanceTypes LAUNCH_INSTANCE_TYPES
OnDemandFallback LAUNCH_ON_DEMAND_FALLBACK
MaxBatchInstances LAUNCH_MAX_INSTANCES
MessagesPerInstance LAUNCH_MESSAGES_PER_INSTANCE
VpcCidr VPC_CIDR
LogRetentionDays LOG_RETENTION_DAYS
AlarmEmail ALARM_EMAIL
QueueAgeAlarmSeconds QUEUE_AGE_ALARM_S
MonthlyBudgetUsd MONTHLY_BUDGET_USD
"

template_parameters() {
  awk '
    /^Parameters:/ { inside = 1; next }
    inside && /^[^ #]/ { inside = 0 }
    inside && /^  [A-Za-z0-9]+:[[:space:]]*$/ { sub(/^  /, ""); sub(/:.*/, ""); print }
  ' "$ROOT/template.yaml"
}

# Fills PARAMETER_OVERRIDES (Key=Value words for sam deploy) from .env.
build_parameter_overrides() {
  PARAMETER_OVERRIDES=()
  IMAGE_URI="${IMAGE_URI:-}"
  if [[ -z $IMAGE_URI && -n ${ECR_REPOSITORY_URI:-} ]]; then
    IMAGE_URI="${ECR_REPOSITORY_URI}:${IMAGE_TAG:-latest}"
  fi
  local name var value
  while IFS= read -r name; do
    value=""
    var="CFN_PARAM_${name}"
    if [[ -n ${!var:-} ]]; then
      value="${!var}"
    else
      var="$(printf '%s\n' "$PARAMETER_MAP" | awk -v n="$name" '$1 == n { print $2; exit }')"
      if [[ -n $var ]]; then
        value="${!var:-}"
      fi
    fi
    if [[ -n $value ]]; then
      PARAMETER_OVERRIDES+=("${name}=${value}")
    fi
  done < <(template_parameters)
}

# sam build + sam deploy of template.yaml: creates the stack or updates it; a deploy with no
# change is a success (--no-fail-on-empty-changeset), so it is safe to run again.
deploy_stack() {
  require_sam
  build_parameter_overrides
  local sam="${SAM_CLI:-sam}" build_dir="${SAM_BUILD_DIR:-$ROOT/.aws-sam/build}"
  local deploy=("$sam" deploy --template-file "$build_dir/template.yaml"
    --stack-name "$STACK_NAME" --region "$AWS_REGION" --resolve-s3
    --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND
    --no-confirm-changeset --no-fail-on-empty-changeset
    --tags "Project=smart-transcription-router")
  if [[ ${#PARAMETER_OVERRIDES[@]} -gt 0 ]]; then
    deploy+=(--parameter-overrides "${PARAMETER_OVERRIDES[@]}")
  fi
  info "building template.yaml (sam build) ..."
  (cd "$ROOT" && run_tool "$sam" build --template-file "$ROOT/template.yaml" --build-dir "$build_dir")
  info "deploying stack $STACK_NAME (sam deploy) ..."
  run_tool "${deploy[@]}"
}

# Writes the stack outputs the other steps and deployables read into .env (so .env never holds
# a second, different name for what the stack defines: the server's private URL, the tags).
STACK_OUTPUT_SETTINGS="QueueUrl:QUEUE_URL DeadLetterQueueUrl:DLQ_URL
IdempotencyTableName:IDEMPOTENCY_TABLE RouterFunctionArn:ROUTER_FUNCTION_ARN
RouterDeadLetterQueueUrl:ROUTER_DEAD_LETTER_QUEUE_URL WorkerLaunchTemplateId:LAUNCH_TEMPLATE_ID
ServerUrl:SERVER_URL ServerInstanceTag:SERVER_INSTANCE_TAG BatchInstanceTag:BATCH_INSTANCE_TAG
PrivateSubnetIds:LAUNCH_SUBNET_IDS"
record_stack_outputs() {
  local key var value
  for key in $STACK_OUTPUT_SETTINGS; do
    var="${key#*:}"
    value="$(stack_output "${key%%:*}")"
    if [[ -n $value && $value != None ]]; then
      set_env_value "$var" "$value"
    fi
  done
}

# ---------------------------------------------------------------------------- instance tags

# Every instance the stack can start carries SmartRouterRole=<value>: the batch workers (the
# launch template and the launcher) and the server (step-320). The values are stack outputs;
# when the stack is gone they follow template.yaml's own formulas, which
# tests/scripts/test_contract.py holds equal to these.
# shellcheck disable=SC2034 # read by the steps
ROLE_TAG_KEY=SmartRouterRole

# template.yaml's VpcCidr AllowedPattern and LogRetentionDays AllowedValues, verbatim (a test
# keeps them equal): step-001 refuses what CloudFormation would refuse, before any deploy.
# shellcheck disable=SC2034 # read by step-001
VPC_CIDR_PATTERN='^(10\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|172\.(1[6-9]|2[0-9]|3[01])|192\.168)\.0\.0/16$'
# shellcheck disable=SC2034 # read by step-001
LOG_RETENTION_VALUES="1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653"

# Sets INSTANCE_TAGS to the role tag values of the stack's instances (read_stack first).
stack_instance_tags() {
  local batch server
  batch="$(stack_output BatchInstanceTag)"
  server="$(stack_output ServerInstanceTag)"
  # shellcheck disable=SC2034 # read by step-999
  INSTANCE_TAGS=("${batch:-${STACK_NAME}-batch-worker}" "${server:-${STACK_NAME}-server}")
}

# ---------------------------------------------------------------------------- Run Command

# Runs a shell script on an instance with SSM Run Command (the server sits in a private subnet:
# this is how the checks reach it without opening a port) and waits for it. Sets RUN_STATUS
# (Success, Failed, TimedOut, ...) and RUN_OUTPUT (its standard output). A dry run prints the
# call and sets RUN_STATUS to DryRun.
run_on_instance() {
  local instance="$1" script="$2" wait_s="${3:-120}"
  RUN_STATUS=""
  RUN_OUTPUT=""
  aws_base
  require_cmd python3 "install Python 3 (used to write the Run Command parameters)"
  local params
  params="$(umask 077 && mktemp)"
  python3 -c 'import json, sys; json.dump({"commands": [sys.argv[1]], "executionTimeout": [sys.argv[2]]}, open(sys.argv[3], "w"))' \
    "$script" "$wait_s" "$params"
  if [[ $DRY_RUN == 1 ]]; then
    print_call "${AWS_BASE[@]}" ssm send-command --instance-ids "$instance" \
      --document-name AWS-RunShellScript --parameters "file://<commands>"
    rm -f "$params"
    RUN_STATUS=DryRun
    return 0
  fi
  run_tool "${AWS_BASE[@]}" ssm send-command --instance-ids "$instance" \
    --document-name AWS-RunShellScript --comment "smart-router $(basename "$0")" \
    --timeout-seconds 60 --parameters "file://$params" --query Command.CommandId --output text
  rm -f "$params"
  local command_id="$AWS_OUT" deadline=$((SECONDS + wait_s + 30)) result
  while :; do
    if aws_lookup 'InvocationDoesNotExist' ssm get-command-invocation --command-id "$command_id" \
      --instance-id "$instance" --output json; then
      result="$AWS_OUT"
      RUN_STATUS="$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Status"])')"
      if [[ ! $RUN_STATUS =~ ^(Pending|InProgress|Delayed)$ ]]; then
        # shellcheck disable=SC2034 # read by the steps
        RUN_OUTPUT="$(printf '%s' "$result" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("StandardOutputContent", ""), end="")')"
        return 0
      fi
    fi
    [[ $SECONDS -lt $deadline ]] || die "Run Command $command_id on $instance did not finish within $((wait_s + 30))s: see aws ssm list-command-invocations."
    sleep 2
  done
}

# ---------------------------------------------------------------------------- samples, HTTP

# Writes a short WAV for the smoke tests: espeak-ng speech when installed, else a 2 s tone
# (python3's wave module), so the pipeline runs end to end on any machine.
make_sample_wav() {
  local path="$1"
  if command -v espeak-ng >/dev/null 2>&1; then
    espeak-ng -v "${2:-sv}" -s 150 -w "$path" "Det här är ett test av transkriberingen." && return 0
  fi
  require_cmd python3 "install Python 3 or espeak-ng to make the sample audio (or pass --file)"
  python3 - "$path" <<'PY'
import math, struct, sys, wave
rate = 16000
with wave.open(sys.argv[1], "wb") as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(rate)
    out.writeframes(b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(2 * rate)
    ))
PY
}

# The server's bearer key: API_KEY when set, else the SSM SecureString (step-010). Sets API_KEY_VALUE.
resolve_api_key() {
  API_KEY_VALUE="${API_KEY:-}"
  [[ -n $API_KEY_VALUE ]] && return 0
  require_env API_KEY_PARAMETER step-000-setup-configuration.sh
  if [[ $DRY_RUN == 1 ]]; then
    print_call "${AWS_BASE[@]}" ssm get-parameter --name "$API_KEY_PARAMETER" --with-decryption
    API_KEY_VALUE="<key>"
    return 0
  fi
  aws_lookup ParameterNotFound ssm get-parameter --name "$API_KEY_PARAMETER" --with-decryption \
    --query Parameter.Value --output text ||
    die "SSM parameter $API_KEY_PARAMETER does not exist: run $(step_path step-010-setup-iam-permissions.sh) first."
  API_KEY_VALUE="$AWS_OUT"
}

# A private file with the Authorization header (curl -H @file), so the key is never on a
# command line. Sets AUTH_HEADER_FILE; removed on exit.
write_auth_header() {
  AUTH_HEADER_FILE="$(umask 077 && mktemp)"
  # shellcheck disable=SC2064 # expand the path now
  trap "rm -f '$AUTH_HEADER_FILE'" EXIT
  printf 'Authorization: Bearer %s\n' "$API_KEY_VALUE" >"$AUTH_HEADER_FILE"
}
