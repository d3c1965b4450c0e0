#!/usr/bin/env bash
# Re-resolves constraints.txt (the local lock) from requirements*.txt against PyPI, for Python 3.11 and 3.12,
# then syncs .venv. Run it after changing a requirements file; commit both files together.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/uv ] || bash infra/local/setup_venv.sh
mkdir -p .filegate
grep -v -- '--constraint' requirements.txt > .filegate/requirements-local.txt
.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header --no-annotate \
  .filegate/requirements-local.txt requirements-dev.txt -o constraints.txt
bash infra/local/setup_venv.sh
