"""Infra tests: the deploy package (infra/mwaa/filegate_deploy) is importable the way the Makefile runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_PACKAGE_ROOT = ROOT / "infra" / "mwaa"
TOOLS_BIN = ROOT / ".venv-tools" / "bin"

if str(DEPLOY_PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(DEPLOY_PACKAGE_ROOT))


@pytest.fixture(scope="session")
def built_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bundle built from the working tree for the whole session."""
    from filegate_deploy.bundle import build

    out = tmp_path_factory.mktemp("bundle") / "mwaa"
    build(out)
    return out


@pytest.fixture(scope="session")
def rendered_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from filegate_deploy.template import render_file

    lambda_zip = ROOT / "build" / "lambda" / "filegate-lambda.zip"
    return render_file(tmp_path_factory.mktemp("aws") / "filegate.yaml", lambda_zip)


@pytest.fixture(scope="session")
def repository_dag_ids(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The DAG ids the repository's dags/ defines with the editable install: what every bundle must yield too."""
    script = ("import json, sys; from airflow.dag_processing.dagbag import DagBag; "
              "print(json.dumps(sorted(DagBag(dag_folder=sys.argv[1]).dag_ids)))")
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "dags")], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "FILEGATE_SQS_QUEUE_BASE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012",
             "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW_HOME": str(tmp_path_factory.mktemp("dagids"))},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    dag_ids: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(dag_id.startswith("process_") for dag_id in dag_ids)
    return dag_ids


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: `make tools` (bash infra/aws/tools_venv.sh) installs cfn-lint and checkov")
    return path
