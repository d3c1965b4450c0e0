#!/usr/bin/env bash
# Re-resolves constraints.txt (the local lock) from requirements*.txt and infra/mwaa/image-requirements.txt (what
# MWAA's image installs, for the MWAA-faithful run) against PyPI, for Python 3.11 and 3.12,
# with MWAA 3.3.1's pins as constraints (uv -c), so every package MWAA pins gets MWAA's version; the deviations in
# infra/local/mwaa-parity.toml are applied (see infra/local/mwaa_constraints.py). MWAA's two constraint files are
# read from $MWAA_CONSTRAINTS_DIR (default ../shared/mwaa beside the clone); they are not part of the repository.
# Then syncs .venv. Run it after changing a requirements file or mwaa-parity.toml; commit them together, and
# list any new package MWAA does not pin under [additions] (tests/infra/test_mwaa_versions.py checks).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/uv ] || bash infra/local/setup_venv.sh
mkdir -p .filegate
.venv/bin/python infra/local/mwaa_constraints.py .filegate/mwaa-constraints.txt
grep -v -- '--constraint' requirements.txt > .filegate/requirements-local.txt
.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header --no-annotate \
  -c .filegate/mwaa-constraints.txt .filegate/requirements-local.txt requirements-dev.txt \
  infra/mwaa/image-requirements.txt -o constraints.txt
bash infra/local/setup_venv.sh
