#!/usr/bin/env bash
# step-305: publish the Whisper model to the S3 model registry (s3://BUCKET_NAME/models/NAME/)
# and record the pinned version as MODEL_ID in .env: the server and the worker download it at
# start, verify every file and load it (docs/model-supply.md). The image needs no model baked in.
#
# Where the model comes from (one of):
#   --model-dir DIR   a transformers Whisper checkpoint (config.json, model.safetensors, tokenizer
#                     and preprocessor files), e.g. from `hf download KBLab/kb-whisper-small
#                     --local-dir DIR` on a machine with model hub access;
#   --ct2-dir DIR     a CTranslate2 export: converted first by `smart-router model import-ct2`
#                     into models/NAME, then published;
#   --download        `hf download HUB_ID` into models/NAME (needs hub access and the `hf` CLI);
#   nothing           models/NAME if it exists.
# Options: --name NAME (default kb-whisper-small), --hub-id ID (default KBLab/kb-whisper-small),
# --language CODE (repeatable; default LANGUAGE from .env, or with LANGUAGE=auto the languages
# the model's generation config declares), --verify (download the published
# version into a temporary cache and check every file, as a server would).
# Publishing the same files again uploads nothing; changed files become a new version (never an
# overwrite). Uses the bucket of step-000 and the project's `smart-router` command.
#
# Usage: step-305-publish-model.sh [--model-dir DIR | --ct2-dir DIR | --download] [--name NAME]
#        [--hub-id ID] [--language CODE] [--verify] [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
model_dir=""
ct2_dir=""
download=0
verify=0
name="kb-whisper-small"
hub_id="KBLab/kb-whisper-small"
languages=()
args=("${REST_ARGS[@]+"${REST_ARGS[@]}"}")
i=0
value_of() {
  [[ $((i + 1)) -lt ${#args[@]} ]] || die "${args[$i]} needs a value (see $(basename "$0") --help)."
  i=$((i + 1))
  VALUE="${args[$i]}"
}
while [[ $i -lt ${#args[@]} ]]; do
  case "${args[$i]}" in
    --model-dir) value_of && model_dir="$VALUE" ;;
    --ct2-dir) value_of && ct2_dir="$VALUE" ;;
    --name) value_of && name="$VALUE" ;;
    --hub-id) value_of && hub_id="$VALUE" ;;
    --language) value_of && languages+=("$VALUE") ;;
    --download) download=1 ;;
    --verify) verify=1 ;;
    *) die "unknown argument '${args[$i]}' (see $(basename "$0") --help)." ;;
  esac
  i=$((i + 1))
done
sources=$(((${#model_dir} > 0) + (${#ct2_dir} > 0) + download))
[[ $sources -le 1 ]] || die "give only one of --model-dir, --ct2-dir and --download."
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ ]] || die "--name '$name' must be 1-128 of A-Z a-z 0-9 _ . - starting with a letter or digit."

load_env
require_env BUCKET_NAME step-000-setup-configuration.sh
# No --language: a concrete LANGUAGE from .env names the model's language; with LANGUAGE=auto
# (the default) the manifest lists the languages the model's own generation config declares.
if [[ ${#languages[@]} -eq 0 && -n ${LANGUAGE:-} && $LANGUAGE != auto ]]; then
  languages=("$LANGUAGE")
fi
cli="$ROOT/.venv/bin/smart-router"
if [[ ! -x $cli ]]; then
  cli="$(command -v smart-router || true)"
  [[ -n $cli ]] || die "the smart-router command is not installed: run scripts/dev-setup.sh first."
fi
require_aws
# boto3 (inside smart-router) reads AWS_DEFAULT_REGION; AWS_ENDPOINT_URL is its own too.
export AWS_DEFAULT_REGION="$AWS_REGION"

local_dir="$ROOT/models/$name"
if [[ -n $ct2_dir ]]; then
  [[ -d $ct2_dir ]] || die "--ct2-dir $ct2_dir is not a directory."
  run_tool "$cli" model import-ct2 "$ct2_dir" "$local_dir" --overwrite
  model_dir="$local_dir"
elif [[ $download == 1 ]]; then
  hf="$(command -v hf || command -v huggingface-cli || true)"
  if [[ $DRY_RUN != 1 && -z $hf ]]; then
    die "the hf command is not installed: pip install huggingface_hub, or download elsewhere and pass --model-dir."
  fi
  # Only what transformers loads: the repository also holds other formats (ggml, ...).
  run_tool "${hf:-hf}" download "$hub_id" --local-dir "$local_dir" \
    --include "*.json" "*.txt" "model.safetensors"
  model_dir="$local_dir"
elif [[ -z $model_dir ]]; then
  model_dir="$local_dir"
fi
if [[ $DRY_RUN != 1 || -z $ct2_dir && $download == 0 ]]; then
  [[ -d $model_dir ]] || die "no model directory at $model_dir: pass --model-dir, --ct2-dir or --download (docs/model-supply.md)."
fi

uri="s3://$BUCKET_NAME/models/$name/"
publish=("$cli" model publish "$model_dir" "$uri" --source "${hub_id}")
for code in "${languages[@]}"; do
  publish+=(--language "$code")
done
if [[ $DRY_RUN == 1 ]]; then
  print_call "${publish[@]}"
  if [[ -d $model_dir ]]; then
    # Hashing is local (no AWS call): shows the version a real run would publish.
    AWS_OUT="$("${publish[@]}" --plan)" || die "smart-router model publish --plan failed."
  fi
else
  run_tool "${publish[@]}"
  printf '%s\n' "$AWS_OUT" | grep -E '"(uploaded|already_present|latest_updated)"' | tr -d ' ,' || true
fi
pinned="$(printf '%s\n' "$AWS_OUT" | sed -n 's/^  "uri": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)"
if [[ -z $pinned ]]; then
  pinned="${uri}v-<hash>/"
fi
if [[ $verify == 1 ]]; then
  cache="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand the path now
  trap "rm -rf '$cache'" EXIT
  run_tool "$cli" model fetch "$pinned" --cache-dir "$cache"
  info "verified: every file of $pinned downloads and matches its manifest"
fi
if [[ -n ${MODEL_ID:-} && $MODEL_ID != "$pinned" ]]; then
  info "MODEL_ID was $MODEL_ID"
fi
set_env_value MODEL_ID "$pinned"
info "model $name published at $pinned (template parameter ModelId takes MODEL_ID at step-340)"
next_step step-301-fast-api-setup-ecr-repository.sh
