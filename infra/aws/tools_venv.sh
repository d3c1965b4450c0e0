#!/usr/bin/env bash
# Creates .venv-tools/ with cfn-lint and checkov from PyPI, pinned by constraints-tools.txt.
# They live apart from .venv/ because checkov pins boto3/botocore 1.35 while Airflow 3.3.1 needs 1.43.
#   bash infra/aws/tools_venv.sh        # install or sync
#   bash infra/aws/tools_venv.sh lock   # re-resolve constraints-tools.txt from requirements-tools.txt, then sync
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/uv ] || bash infra/local/setup_venv.sh
if [ "${1:-}" = "lock" ]; then
  .venv/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header --no-annotate \
    requirements-tools.txt -o constraints-tools.txt
fi
if [ ! -x .venv-tools/bin/python ]; then
  "$PYTHON" -m venv .venv-tools
fi
.venv/bin/uv pip install --quiet --python .venv-tools/bin/python -c constraints-tools.txt -r requirements-tools.txt
touch .venv-tools/.installed
echo "tools: .venv-tools ready (cfn-lint $(.venv-tools/bin/cfn-lint --version | awk '{print $2}'), checkov $(.venv-tools/bin/checkov --version))"
