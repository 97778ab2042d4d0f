#!/usr/bin/env bash
# Builds one Lambda deployment package: the project wheel installed with one extra (`router`,
# `launcher`) into ARTIFACTS_DIR, dependencies as binary wheels for the Lambda platform whatever
# machine builds. router/Makefile and launcher/Makefile (what `sam build` runs) call it.
# Usage: scripts/build-lambda-package.sh EXTRA ARTIFACTS_DIR
set -euo pipefail

if [[ $# -ne 2 || -z $1 || -z $2 ]]; then
  echo "usage: $0 EXTRA ARTIFACTS_DIR" >&2
  exit 2
fi
extra=$1
out=$2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python_bin="${PYTHON:-python3}"
# The Lambda's Python is template.yaml's one Runtime line (Globals): pip takes wheels for that
# version (e.g. cp314 pydantic-core), whatever Python runs this script. LAMBDA_PYTHON overrides.
runtime="$(sed -n 's/^ *Runtime: python\(3\.[0-9][0-9]*\) *$/\1/p' "$root/template.yaml" | sort -u)"
if [[ -z ${LAMBDA_PYTHON:-} && $(printf '%s\n' "$runtime" | grep -c .) -ne 1 ]]; then
  echo "template.yaml must name exactly one Lambda runtime (Globals: Function: Runtime), found: ${runtime:-none}" >&2
  exit 2
fi
lambda_python="${LAMBDA_PYTHON:-$runtime}"

wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$python_bin" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$root"
wheel="$(ls "$wheels"/*.whl)"
"$python_bin" -m pip install --quiet --no-cache-dir --upgrade --target "$out" \
  --platform "${LAMBDA_PLATFORM:-manylinux2014_x86_64}" --implementation cp \
  --python-version "$lambda_python" --only-binary=:all: "${wheel}[${extra}]"
rm -rf "${out:?}/bin"
