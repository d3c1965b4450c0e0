#!/usr/bin/env bash
# Creates .venv/ with everything Filegate needs locally, from PyPI only.
# requirements.txt carries MWAA's --constraint URL (GitHub); we drop that line and
# use constraints.txt, the lock resolved from PyPI for Python 3.11 and 3.12 on MWAA 3.3.1's versions (lock.sh).
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
# uv pip install moves every locked package to its locked version (downgrades too) but leaves packages an earlier
# lock installed; remove those, so .venv holds what a fresh clone gets.
stale="$(.venv/bin/python - <<'PY'
import importlib.metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

locked = {"pip", "uv", "filegate"}
for line in open("constraints.txt"):
    line = line.split("#", 1)[0].strip()
    if line:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            locked.add(canonicalize_name(requirement.name))
installed = {canonicalize_name(dist.metadata["Name"]) for dist in importlib.metadata.distributions()}
print(" ".join(sorted(installed - locked)))
PY
)"
if [ -n "$stale" ]; then
  # shellcheck disable=SC2086
  .venv/bin/uv pip uninstall --quiet --python .venv/bin/python $stale
  echo "setup: removed packages constraints.txt no longer has: $stale"
fi
touch .venv/.installed
echo "setup: .venv ready ($(.venv/bin/python --version))"
