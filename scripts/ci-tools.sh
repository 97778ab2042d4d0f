#!/usr/bin/env bash
# Tools only the checks need (scripts/check.sh runs this through `dev-setup.sh --with-ci-tools`);
# the main job (scripts/main.sh) never installs them. Each is installed only when missing.
#   - checkov (template security checks, tests/infra/test_checkov.py) in its own venv at
#     .cache/tools/checkov: in .venv it would downgrade pydantic, packaging, urllib3 and networkx;
#   - espeak-ng (test speech) and sox (measures it), from Debian.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python_bin="${PYTHON:-python3}"
checkov_version="3.3.30"
checkov_venv="$root/.cache/tools/checkov"
if [[ ! -f "$checkov_venv/.installed-$checkov_version" ]]; then
  echo "ci-tools: installing checkov $checkov_version into .cache/tools/checkov" >&2
  "$python_bin" -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install --quiet "checkov==$checkov_version"
  touch "$checkov_venv/.installed-$checkov_version"
fi

if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null
  else
    echo "ci-tools: espeak-ng and sox are missing and cannot be installed (need root + apt-get)" >&2
  fi
fi
