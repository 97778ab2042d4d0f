#!/usr/bin/env bash
# Creates or refreshes the project's virtual environment at .venv (repository root).
# Safe to run again: it reinstalls only when pyproject.toml changed since the last run.
# CPU torch is pinned and installed first; otherwise pip resolves torch from the registry
# and pulls gigabytes of CUDA wheels.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python_bin="${PYTHON:-python3}"
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"

if [[ ! -x "$venv/bin/python" ]]; then
  "$python_bin" -m venv "$venv"
fi
if [[ ! -f "$stamp" ]]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
  "$venv/bin/python" -m pip install --quiet -e ".[dev]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

# checkov (template security checks, tests/infra/test_checkov.py) in its own venv: in .venv it
# would downgrade pydantic, packaging, urllib3 and networkx.
checkov_version="3.3.30"
checkov_venv="$root/.cache/tools/checkov"
if [[ ! -f "$checkov_venv/.installed-$checkov_version" ]]; then
  "$python_bin" -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install --quiet "checkov==$checkov_version"
  touch "$checkov_venv/.installed-$checkov_version"
fi

# Tools outside PyPI: espeak-ng makes test speech; sox measures it. Installed only when missing.
if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null
  else
    echo "dev-setup: espeak-ng and sox are missing and cannot be installed (need root + apt-get)" >&2
  fi
fi
