#!/usr/bin/env bash
# Creates or refreshes the project's virtual environment at .venv (repository root).
#
#   bash scripts/dev-setup.sh                  # what the main job (scripts/main.sh) needs
#   bash scripts/dev-setup.sh --with-ci-tools  # plus the test and lint tools (scripts/check.sh)
#
# Without the flag it installs the `local` extra: the router, server and worker with moto's
# server, nothing else. With it, the `dev` extra (a superset: pytest, ruff, mypy, cfn-lint, ...)
# and then scripts/ci-tools.sh (checkov in its own venv, espeak-ng and sox), which only the tests
# use; a newcomer's first `scripts/main.sh` does not wait for them.
# Safe to run again: it reinstalls only when pyproject.toml changed since the last run (or when
# the dev tools are wanted and only the main job's set is there).
# CPU torch is pinned and installed first; otherwise pip resolves torch from the registry and
# pulls gigabytes of CUDA wheels.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

extra="local"
case "${1:-}" in
  "") ;;
  --with-ci-tools) extra="dev" ;;
  -h | --help)
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "dev-setup: unknown argument '$1' (expected --with-ci-tools)" >&2
    exit 2
    ;;
esac

python_bin="${PYTHON:-python3}"
venv="$root/.venv"
hash="$(sha256sum pyproject.toml | cut -c1-16)"
# One stamp per pyproject.toml and extra; `dev` includes `local`, so it satisfies both.
if [[ "$extra" == "dev" ]]; then
  wanted=("$venv/.installed-$hash-dev")
else
  wanted=("$venv/.installed-$hash-dev" "$venv/.installed-$hash-local")
fi
installed=false
for stamp in "${wanted[@]}"; do
  [[ -f "$stamp" ]] && installed=true
done

if [[ ! -x "$venv/bin/python" ]]; then
  "$python_bin" -m venv "$venv"
fi
if [[ "$installed" != true ]]; then
  echo "dev-setup: installing .[$extra] into .venv (the first time takes a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
  "$venv/bin/python" -m pip install --quiet -e ".[$extra]"
  rm -f "$venv"/.installed-*
  touch "$venv/.installed-$hash-$extra"
fi

if [[ "$extra" == "dev" ]]; then
  bash "$root/scripts/ci-tools.sh"
fi
