#!/usr/bin/env bash
# The whole check: lint, format, types, generated docs, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
bin=.venv/bin
echo "== ruff";   "$bin/ruff" check src tests bench scripts deploy
echo "== format"; "$bin/ruff" format --check src tests bench scripts deploy
echo "== mypy";   "$bin/mypy"
echo "== pytest"
# pytest exits 5 when it collected nothing: set -e turns that into a failure too.
"$bin/pytest" "$@"
