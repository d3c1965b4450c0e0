"""Infra tests: the deploy package (infra/mwaa/filegate_deploy) is importable the way the Makefile runs it."""

from __future__ import annotations

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


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} missing: `make tools` (bash infra/aws/tools_venv.sh) installs cfn-lint and checkov")
    return path
