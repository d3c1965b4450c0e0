#!/usr/bin/env bash
# Creates .venv/ with everything Filegate needs locally, from PyPI only.
# requirements.txt carries MWAA's --constraint URL (GitHub); we drop that line and
# use constraints.txt, the lock resolved from PyPI for Python 3.11 and 3.12.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Filegate needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PY
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
mkdir -p .filegate
grep -v -- '--constraint' requirements.txt > .filegate/requirements-local.txt
.venv/bin/uv pip install --quiet --python .venv/bin/python \
  -c constraints.txt -r .filegate/requirements-local.txt -r requirements-dev.txt -e .
touch .venv/.installed
echo "setup: .venv ready ($(.venv/bin/python --version))"
