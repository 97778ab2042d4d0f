#!/usr/bin/env bash
# The one check command, the same locally and in CI: set-up, ruff, ruff format --check, mypy, pytest.
# Set-up here includes the test-only tools (the dev extra, checkov, espeak-ng, sox), which the main
# job (scripts/main.sh) does not install.
# Extra arguments go to pytest (for example: scripts/check.sh -m slow -k stitch).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/dev-setup.sh --with-ci-tools
py="$root/.venv/bin/python"

echo "== ruff check"
"$py" -m ruff check .
echo "== ruff format --check"
"$py" -m ruff format --check .
echo "== mypy"
"$py" -m mypy .
echo "== pytest"
set +e
"$py" -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
