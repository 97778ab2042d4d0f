#!/usr/bin/env bash
# Builds one Lambda deployment package: the project wheel installed with one extra (`router`,
# `launcher`) into ARTIFACTS_DIR, dependencies as binary wheels for the Lambda platform whatever
# machine builds. router/Makefile and batch_worker/Makefile (what `sam build` runs) call it.
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

wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$python_bin" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$root"
wheel="$(ls "$wheels"/*.whl)"
"$python_bin" -m pip install --quiet --no-cache-dir --upgrade --target "$out" \
  --platform "${LAMBDA_PLATFORM:-manylinux2014_x86_64}" --implementation cp \
  --python-version "${LAMBDA_PYTHON:-3.11}" --only-binary=:all: "${wheel}[${extra}]"
rm -rf "${out:?}/bin"
