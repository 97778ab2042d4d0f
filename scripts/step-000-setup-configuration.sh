#!/usr/bin/env bash
# step-000: write .env, the configuration every later step (and the deployables) read.
#
# Starts from .env.example (the settings of the router, server and worker) and
# scripts/lib/deploy.env.example (region, stack, image and instance settings of these scripts).
# Each value is, first found: --set KEY=VALUE, the environment, the current .env (unless
# --force), the AWS default below, the example's value. With a terminal it asks for the main
# settings (--all: every one); without one, or with --non-interactive, it asks nothing.
# AWS defaults: the key lives in SSM (API_KEY empty, API_KEY_PARAMETER=/transcription/api-key);
# SERVER_URL (the server's private address), QUEUE_URL, IDEMPOTENCY_TABLE, the instance tags and
# the subnets come from the stack's outputs (steps 020/340 write them); ALLOWED_BUCKETS is
# [BUCKET_NAME]. BUCKET_NAME is required.
# Re-runnable: the same answers give the same file ("unchanged"). Makes no AWS call.
#
# Usage: step-000-setup-configuration.sh [--non-interactive] [--all] [--force]
#        [--set KEY=VALUE]... [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
interactive=0
[[ -t 0 ]] && interactive=1
prompt_all=0
force=0
sets=()
i=0
while [[ $i -lt ${#REST_ARGS[@]} ]]; do
  arg="${REST_ARGS[$i]}"
  case "$arg" in
    --non-interactive) interactive=0 ;;
    --all) prompt_all=1 ;;
    --force) force=1 ;;
    --set)
      i=$((i + 1))
      [[ $i -lt ${#REST_ARGS[@]} ]] || die "--set needs KEY=VALUE."
      sets+=("${REST_ARGS[$i]}")
      ;;
    --set=*) sets+=("${arg#*=}") ;;
    *) die "unknown argument '$arg' (see $(basename "$0") --help)." ;;
  esac
  i=$((i + 1))
done

EXAMPLE="$ROOT/.env.example"
DEPLOY_EXAMPLE="$SCRIPTS_DIR/lib/deploy.env.example"
[[ -f $EXAMPLE ]] || die "$EXAMPLE is missing: run this from a complete checkout."

PROMPTED="AWS_REGION BUCKET_NAME STACK_NAME AUDIO_PREFIX TRANSCRIPT_PREFIX LANGUAGE MODEL_ID \
API_KEY_PARAMETER SERVER_INSTANCE_TYPE VPC_CIDR ALARM_EMAIL MONTHLY_BUDGET_USD"

keys_of() {
  sed -n 's/^\([A-Z][A-Z0-9_]*\)=.*/\1/p' "$@"
}

# Values of the current .env (read, never executed).
existing_value() {
  [[ $force == 0 && -f $ENV_FILE ]] || return 1
  grep -q "^$1=" "$ENV_FILE" || return 1
  strip_quotes "$(sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1)"
}

set_value() {
  local key="$1"
  local flag
  for flag in "${sets[@]+"${sets[@]}"}"; do
    if [[ ${flag%%=*} == "$key" ]]; then
      printf '%s' "${flag#*=}"
      return 0
    fi
  done
  return 1
}

aws_default() {
  case "$1" in
    API_KEY | QUEUE_URL | IDEMPOTENCY_TABLE | SERVER_URL | DLQ_URL | LAUNCH_TEMPLATE_ID) printf "" ;;
    SERVER_INSTANCE_TAG | BATCH_INSTANCE_TAG | LAUNCH_SUBNET_IDS) printf "" ;;
    API_KEY_PARAMETER) printf '/transcription/api-key' ;;
    BUCKET_NAME) printf '' ;;
    *) return 1 ;;
  esac
}

for flag in "${sets[@]+"${sets[@]}"}"; do
  [[ $flag == *=* ]] || die "--set takes KEY=VALUE, got '$flag'."
  key="${flag%%=*}"
  keys_of "$EXAMPLE" "$DEPLOY_EXAMPLE" | grep -qx "$key" || die "--set $key: no such setting in .env.example or scripts/lib/deploy.env.example."
done

resolve() {
  local key="$1" example="$2"
  set_value "$key" && return 0
  if [[ -n ${!key+set} ]]; then
    printf '%s' "${!key}"
    return 0
  fi
  existing_value "$key" && return 0
  aws_default "$key" && return 0
  printf '%s' "$example"
}

# The comment line just above KEY in its example file (shown when asking).
describe() {
  awk -v key="$1" '/^#/ { last = $0 } $0 ~ "^" key "=" { sub(/^# ?/, "", last); print last; exit }' \
    "$EXAMPLE" "$DEPLOY_EXAMPLE"
}

ask() {
  local key="$1" current="$2" answer
  printf '\n%s\n%s [%s]: ' "$(describe "$key")" "$key" "$current" >&2
  IFS= read -r answer || answer=""
  printf '%s' "${answer:-$current}"
}

# Resolve every key in file order; BUCKET_NAME first, since ALLOWED_BUCKETS derives from it.
while IFS= read -r line; do
  [[ $line =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || continue
  key="${BASH_REMATCH[1]}"
  value="$(resolve "$key" "${BASH_REMATCH[2]}")"
  if [[ $interactive == 1 ]] && { [[ $prompt_all == 1 ]] || [[ " $PROMPTED " == *" $key "* ]]; }; then
    if ! set_value "$key" >/dev/null; then
      value="$(ask "$key" "$value")"
    fi
  fi
  printf -v "V_$key" '%s' "$value"
done < <(cat "$EXAMPLE" "$DEPLOY_EXAMPLE")

[[ -n ${V_BUCKET_NAME:-} ]] || die "BUCKET_NAME is required: pass --set BUCKET_NAME=<bucket> or set it in the environment."
example_buckets="$(sed -n 's/^ALLOWED_BUCKETS=//p' "$EXAMPLE")"
if [[ ${V_ALLOWED_BUCKETS:-} == "$example_buckets" || -z ${V_ALLOWED_BUCKETS:-} ]]; then
  V_ALLOWED_BUCKETS="[\"${V_BUCKET_NAME}\"]"
fi

render() {
  echo "# Written by scripts/step-000-setup-configuration.sh from .env.example and"
  echo "# scripts/lib/deploy.env.example. Holds settings only: the server key lives in SSM."
  local file line name varname
  for file in "$EXAMPLE" "$DEPLOY_EXAMPLE"; do
    echo
    while IFS= read -r line || [[ -n $line ]]; do
      if [[ $line =~ ^([A-Z][A-Z0-9_]*)= ]]; then
        name="${BASH_REMATCH[1]}"
        varname="V_$name"
        printf '%s=%s\n' "$name" "${!varname}"
      else
        printf '%s\n' "$line"
      fi
    done <"$file"
  done
}

content="$(render)"
if [[ -f $ENV_FILE ]] && [[ "$(cat "$ENV_FILE")" == "$content" ]]; then
  info "$ENV_FILE is up to date (unchanged)."
elif [[ $DRY_RUN == 1 ]]; then
  info "DRY-RUN: would write $ENV_FILE:"
  printf '%s\n' "$content" | grep -v '^#' | grep -v '^$' | sed 's/^API_KEY=.\{1,\}/API_KEY=<hidden>/'
else
  umask 077
  tmp="$(mktemp "${ENV_FILE}.XXXXXX")"
  printf '%s\n' "$content" >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
  info "wrote $ENV_FILE (mode 600)."
fi
next_step step-001-validate-configuration.sh
