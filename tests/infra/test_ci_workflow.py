"""The GitHub Actions workflow mirrors .ci/run and deploys from main only, with OIDC (no stored AWS keys)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from conftest import ROOT
from filegate_deploy import cfn_yaml
from filegate_deploy.template import BASE_TEMPLATE


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    return data


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_tests_run_exactly_the_ci_entry_point() -> None:
    jobs = _workflow()["jobs"]
    assert "bash .ci/run" in _runs(jobs["test"])
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert jobs["test"]["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    assert "make bundle" in _runs(jobs["build"])


def test_deploy_runs_on_main_pushes_with_oidc() -> None:
    workflow = _workflow()
    deploy = workflow["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"] and "push" in deploy["if"]
    assert deploy["permissions"]["id-token"] == "write"
    assert workflow["permissions"] == {"contents": "read"}
    credentials = next(s for s in deploy["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in credentials["with"] and "aws-access-key-id" not in credentials["with"]
    assert "make deploy" in _runs(deploy)


def test_parameters_example_names_only_template_parameters() -> None:
    parameters = cfn_yaml.load(BASE_TEMPLATE)["Parameters"]
    example = json.loads((ROOT / "infra" / "aws" / "parameters.example.json").read_text())
    names = [item.split("=", 1)[0] for item in example]
    assert set(names) <= set(parameters)
