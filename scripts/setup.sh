#!/usr/bin/env bash
# Set up the project on a fresh machine with only Python 3.11 and git:
# a virtualenv in .venv with the locked dependencies (requirements.lock, exported from
# uv.lock) and the project itself installed in editable mode. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

PY=$(pick_python)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  .venv/bin/python -m ensurepip --upgrade >/dev/null  # e.g. a venv created by `uv sync`
fi
stamp=.venv/.requirements.lock.installed
if ! cmp -s requirements.lock "$stamp" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  cp requirements.lock "$stamp"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "setup: .venv ready ($(.venv/bin/python --version))" >&2
