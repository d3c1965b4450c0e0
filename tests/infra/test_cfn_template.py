"""The CloudFormation template: cfn-lint and checkov clean (base and rendered), every suppression justified and
still needed, and the resources match what the code expects (queue names, functions, secrets, MWAA settings)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, tool
from filegate_deploy import cfn_yaml
from filegate_deploy.template import BASE_TEMPLATE, feeds_from_contracts, functions_from_registry

from filegate.contracts import load_contracts
from filegate.functions.catalog import FUNCTIONS


@pytest.fixture(scope="module")
def template(rendered_template: Path) -> dict[str, Any]:
    return cfn_yaml.load(rendered_template)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _checkov(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(tool("checkov")), "-f", str(path), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.parametrize("which", ["base", "rendered"])
def test_cfn_lint_reports_nothing(which: str, rendered_template: Path) -> None:
    path = BASE_TEMPLATE if which == "base" else rendered_template
    done = subprocess.run([str(tool("cfn-lint")), str(path)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"cfn-lint {path}:\n{done.stdout}{done.stderr}"


def test_checkov_passes_and_every_suppression_is_justified_and_used(rendered_template: Path) -> None:
    report = _checkov(rendered_template)
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 100
    declared = {
        (f"{resource['Type']}.{name}", skip["id"]): skip.get("comment", "")
        for name, resource in cfn_yaml.load(rendered_template)["Resources"].items()
        for skip in (resource.get("Metadata", {}).get("checkov", {}).get("skip", []))
    }
    used = {(c["resource"], c["check_id"]) for c in report["results"]["skipped_checks"]}
    assert set(declared) == used, "a checkov skip that no longer suppresses anything must be removed"
    short = [key for key, comment in declared.items() if len(comment) < 40]
    assert short == [], "each suppression needs a real justification next to it"


def test_one_arrival_queue_and_notification_per_feed(template: dict[str, Any]) -> None:
    contracts = load_contracts()
    queues = {r["Properties"]["QueueName"] for r in _resources(template, "AWS::SQS::Queue").values()
              if isinstance(r["Properties"]["QueueName"], str)}
    assert {c.queue_name for c in contracts} <= queues
    bucket = template["Resources"]["DataBucket"]["Properties"]
    notifications = bucket["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = sorted(n["Filter"]["S3Key"]["Rules"][0]["Value"] for n in notifications)
    assert prefixes == sorted(c.raw_prefix for c in contracts)
    assert all(n["Event"] == "s3:ObjectCreated:*" for n in notifications)
    for name, queue in _resources(template, "AWS::SQS::Queue").items():
        if name != "ArrivalsDeadLetterQueue":
            assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
                "Fn::GetAtt": ["ArrivalsDeadLetterQueue", "Arn"]}


def test_one_function_per_registry_entry_with_its_limits(template: dict[str, Any]) -> None:
    functions = {r["Properties"]["FunctionName"]: r["Properties"]
                 for r in _resources(template, "AWS::Serverless::Function").values()}
    assert set(functions) == set(FUNCTIONS)
    for name, spec in FUNCTIONS.items():
        assert functions[name]["Handler"] == spec["handler"]
        assert functions[name]["Timeout"] == spec["timeout"]
        assert functions[name]["MemorySize"] == spec["memory"]
        assert functions[name]["CodeUri"].endswith("build/lambda/filegate-lambda.zip")
    # Every function a feed routes heavy work to exists.
    assert {c.heavy.function for c in load_contracts()} <= set(functions)


def _dags_policy(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policies = template["Resources"]["MwaaExecutionRole"]["Properties"]["Policies"]
    statements = next(p for p in policies if p["PolicyName"] == "filegate-dags")["PolicyDocument"]["Statement"]
    return {s["Sid"]: s for s in statements}


def test_execution_role_grants_exactly_what_the_dags_call(template: dict[str, Any]) -> None:
    policy = _dags_policy(template)
    assert set(policy) == {"ListDataPrefixes", "ReadData", "WriteDataNeverDelete", "FinishStagedOutputs",
                           "PublishAlerts", "InvokeHeavyStepFunctions", "ReadConnectionsAndVariables",
                           "UseTheDataKey", "ConsumeArrivalEvents"}
    # The DAGs delete nothing but the outputs Lambda staged for them (filegate.pipeline.staged_publish).
    data = {sid: s for sid, s in policy.items() if sid != "FinishStagedOutputs"}
    every_action = [a for s in data.values() for a in (s["Action"] if isinstance(s["Action"], list)
                                                       else [s["Action"]])]
    assert not [a for a in every_action if a.endswith("*") or ("Delete" in a and not a.startswith("sqs:"))]
    staged = policy["FinishStagedOutputs"]
    assert staged["Action"] == ["s3:GetObject", "s3:DeleteObject"]
    assert staged["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/staging/*"}
    invoke = policy["InvokeHeavyStepFunctions"]["Resource"]
    assert len(invoke) == len(FUNCTIONS) and all(r["Fn::GetAtt"][1] == "Arn" for r in invoke)
    assert len(policy["ConsumeArrivalEvents"]["Resource"]) == len(feeds_from_contracts())
    secrets = [r["Fn::Sub"] for r in policy["ReadConnectionsAndVariables"]["Resource"]]
    assert [s.rsplit(":", 1)[1] for s in secrets] == ["airflow/connections/*", "airflow/variables/*"]


def test_mwaa_environment_settings(template: dict[str, Any]) -> None:
    env = template["Resources"]["MwaaEnvironment"]["Properties"]
    assert template["Parameters"]["AirflowVersion"]["Default"] == "3.3.1"
    assert env["DagS3Path"] == "dags"
    assert (env["PluginsS3Path"], env["RequirementsS3Path"], env["StartupScriptS3Path"]) == (
        "plugins.zip", "requirements.txt", "startup.sh")
    options = env["AirflowConfigurationOptions"]
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    kwargs = json.loads(options["secrets.backend_kwargs"])
    assert kwargs["connections_prefix"] == "airflow/connections" and kwargs["variables_prefix"] == "airflow/variables"
    assert all(log["Enabled"] for log in env["LoggingConfiguration"].values())
    assert len(env["NetworkConfiguration"]["SubnetIds"]) == 2


def test_connection_secrets_match_the_connection_ids_the_code_uses(template: dict[str, Any]) -> None:
    from filegate.orchestration.connections import DB_CONN_ID

    names = {r["Properties"]["Name"] for r in _resources(template, "AWS::SecretsManager::Secret").values()}
    expected = {DB_CONN_ID} | {c.destinations.api.conn_id for c in load_contracts() if c.destinations.api}
    expected |= {c.source.remote.conn_id for c in load_contracts() if c.source.remote}
    assert {f"airflow/connections/{conn_id}" for conn_id in expected} <= names
    db = template["Resources"]["Database"]["Properties"]
    assert db["PubliclyAccessible"] is False and db["StorageEncrypted"] is True


def test_data_bucket_is_private_versioned_encrypted_tls_only_with_lifecycle(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    prefixes = {rule.get("Prefix") for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert {"raw/", "processed/", "reports/", "quarantine/"} <= prefixes
    deny = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_startup_script_exports_every_filegate_option_the_template_sets(template: dict[str, Any]) -> None:
    options = template["Resources"]["MwaaEnvironment"]["Properties"]["AirflowConfigurationOptions"]
    filegate_keys = sorted(k.split(".", 1)[1].upper() for k in options if k.startswith("filegate."))
    script = (ROOT / "infra" / "mwaa" / "startup.sh").read_text()
    for key in filegate_keys:
        assert f'export FILEGATE_{key}="${{AIRFLOW__FILEGATE__{key}' in script
    # The settings the DAGs read on MWAA all come from there.
    assert {"BUCKET", "SQS_QUEUE_BASE_URL", "ALERT_TOPIC_ARN"} <= set(filegate_keys)


def test_startup_script_maps_mwaa_options_to_library_settings() -> None:
    env = {"AIRFLOW__FILEGATE__BUCKET": "b", "AIRFLOW__FILEGATE__SQS_QUEUE_BASE_URL": "https://sqs/1",
           "AIRFLOW__FILEGATE__ALERT_TOPIC_ARN": "arn:t", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["sh", "-eu", "-c", f". {ROOT / 'infra/mwaa/startup.sh'} && env"], env=env,
                          capture_output=True, text=True, timeout=30, check=True)
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines() if line.startswith("FILEGATE_"))
    assert exported == {"FILEGATE_BUCKET": "b", "FILEGATE_SQS_QUEUE_BASE_URL": "https://sqs/1",
                        "FILEGATE_ALERT_TOPIC_ARN": "arn:t", "FILEGATE_SQS_WAITER_DELAY": "1",
                        "FILEGATE_FEEDS_DIR": "/usr/local/airflow/dags/feeds"}


def test_rendering_covers_every_contract_and_function() -> None:
    rendered = cfn_yaml.load(BASE_TEMPLATE)
    assert rendered["Resources"]["DataBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"] == []
    assert [f.name for f in functions_from_registry()] == sorted(FUNCTIONS)
