"""Renders the deployable CloudFormation template: the base template plus what the code declares.

Per feed contract (include/feeds/*.yaml): an arrival queue named as the DAG expects (`contract.queue_name`), a queue
policy letting the data bucket send to it, the bucket's ObjectCreated notification on `raw/<feed>/`, and the MWAA
role's right to receive and delete on it. Per entry of `filegate.functions.catalog.FUNCTIONS`: a function with that
name, handler, timeout and memory, its encrypted log group, and the MWAA role's right to invoke exactly it.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filegate_deploy import cfn_yaml

REPO = Path(__file__).resolve().parents[3]
BASE_TEMPLATE = REPO / "infra" / "aws" / "filegate.yaml"
DEFAULT_OUTPUT = REPO / "build" / "aws" / "filegate.yaml"
# Written by the Lambda packaging command; `aws cloudformation package` uploads it and rewrites CodeUri.
DEFAULT_LAMBDA_ZIP = REPO / "build" / "lambda" / "filegate-lambda.zip"
ARRIVAL_QUEUE_RETENTION_S = 4 * 24 * 3600
DEAD_LETTER_AFTER_RECEIVES = 5


@dataclass(frozen=True)
class Feed:
    name: str
    queue_name: str
    raw_prefix: str


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    timeout: int
    memory: int
    ephemeral_storage: int
    description: str


def logical_id(*parts: str) -> str:
    """`orders_v2`, `process-file` → `OrdersV2`, `ProcessFile`: CloudFormation ids are alphanumeric."""
    words = [w for part in parts for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


def feeds_from_contracts() -> list[Feed]:
    from filegate.contracts import load_contracts

    return sorted(
        (Feed(c.name, c.queue_name, c.raw_prefix) for c in load_contracts()), key=lambda feed: feed.name
    )


def functions_from_registry() -> list[Function]:
    from filegate.functions.catalog import FUNCTIONS

    functions = []
    for name, spec in sorted(FUNCTIONS.items()):
        functions.append(
            Function(
                name=name,
                handler=str(spec["handler"]),
                timeout=int(str(spec.get("timeout", 900))),
                memory=int(str(spec.get("memory", 1024))),
                ephemeral_storage=int(str(spec.get("ephemeral_storage", 512))),
                description=str(spec.get("description", "")),
            )
        )
    return functions


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def _add_feed(template: dict[str, Any], feed: Feed) -> str:
    resources = template["Resources"]
    queue_id = f"Arrivals{logical_id(feed.name)}Queue"
    policy_id = f"{queue_id}Policy"
    resources[queue_id] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": feed.queue_name,
            "KmsMasterKeyId": {"Ref": "Key"},
            "MessageRetentionPeriod": ARRIVAL_QUEUE_RETENTION_S,
            "RedrivePolicy": {
                "deadLetterTargetArn": _get_att("ArrivalsDeadLetterQueue", "Arn"),
                "maxReceiveCount": DEAD_LETTER_AFTER_RECEIVES,
            },
        },
    }
    # The bucket ARN is spelled out (not !GetAtt) because the bucket depends on this policy: S3 checks that it
    # may send to the queue when the notification is created.
    resources[policy_id] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DataBucketSendsObjectCreatedEvents",
                        "Effect": "Allow",
                        "Principal": {"Service": "s3.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": _get_att(queue_id, "Arn"),
                        "Condition": {
                            "ArnEquals": {
                                "aws:SourceArn": _sub(
                                    "arn:${AWS::Partition}:s3:::${NamePrefix}-data-${AWS::AccountId}-${AWS::Region}"
                                )
                            },
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        },
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": _get_att(queue_id, "Arn"),
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            },
        },
    }
    bucket = resources["DataBucket"]
    bucket.setdefault("DependsOn", []).append(policy_id)
    bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"].append(
        {
            "Event": "s3:ObjectCreated:*",
            "Queue": _get_att(queue_id, "Arn"),
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": feed.raw_prefix}]}},
        }
    )
    return queue_id


def _add_function(template: dict[str, Any], function: Function, code_uri: str) -> str:
    resources = template["Resources"]
    function_id = f"Function{logical_id(function.name)}"
    log_group_id = f"{function_id}LogGroup"
    resources[log_group_id] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": f"/aws/lambda/{function.name}",
            "RetentionInDays": {"Ref": "LogRetentionDays"},
            "KmsKeyId": _get_att("Key", "Arn"),
        },
    }
    resources[function_id] = {
        "Type": "AWS::Serverless::Function",
        "Metadata": {
            "checkov": {
                "skip": [
                    {
                        "id": "CKV_AWS_116",
                        "comment": "Airflow invokes it synchronously (RequestResponse): a failure returns to the "
                        "task, which retries and records the file's status; a DLQ only serves async invokes.",
                    },
                ]
            }
        },
        "Properties": {
            "FunctionName": function.name,
            "Description": function.description,
            "CodeUri": code_uri,
            "Handler": function.handler,
            "Timeout": function.timeout,
            "MemorySize": function.memory,
            "EphemeralStorage": {"Size": function.ephemeral_storage},
            "Role": _get_att("LambdaRole", "Arn"),
            "ReservedConcurrentExecutions": {"Ref": "LambdaReservedConcurrency"},
            "KmsKeyArn": _get_att("Key", "Arn"),
            "LoggingConfig": {"LogGroup": {"Ref": log_group_id}},
            "VpcConfig": {
                "SubnetIds": [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}],
                "SecurityGroupIds": [{"Ref": "LambdaSecurityGroup"}],
            },
            "Environment": {"Variables": {"FILEGATE_BUCKET": {"Ref": "DataBucket"}}},
        },
    }
    return function_id


def _dags_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = template["Resources"]["MwaaExecutionRole"]["Properties"]["Policies"]
    dags_policy = next(p for p in policies if p["PolicyName"] == "filegate-dags")
    statements: list[dict[str, Any]] = dags_policy["PolicyDocument"]["Statement"]
    return statements


def _role_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    statements = _dags_statements(template)
    found = next((s for s in statements if s.get("Sid") == sid), None)
    if found is None:
        found = {"Sid": sid, "Effect": "Allow"}
        statements.append(found)
    return found


def render(
    base: dict[str, Any], feeds: list[Feed], functions: list[Function], code_uri: str
) -> dict[str, Any]:
    template = copy.deepcopy(base)
    queue_ids = [_add_feed(template, feed) for feed in feeds]
    if queue_ids:
        consume = _role_statement(template, "ConsumeArrivalEvents")
        consume["Action"] = [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        ]
        consume["Resource"] = [_get_att(queue_id, "Arn") for queue_id in queue_ids]
    function_ids = [_add_function(template, function, code_uri) for function in functions]
    invoke = _role_statement(template, "InvokeHeavyStepFunctions")
    if function_ids:
        invoke["Resource"] = [_get_att(function_id, "Arn") for function_id in function_ids]
    else:
        _dags_statements(template).remove(invoke)
    template["Metadata"]["FilegateRendered"] = {
        "feeds": [feed.name for feed in feeds],
        "functions": [function.name for function in functions],
    }
    return template


def render_file(output: Path = DEFAULT_OUTPUT, lambda_zip: Path = DEFAULT_LAMBDA_ZIP) -> Path:
    """Writes the rendered template; CodeUri is relative to it, as `aws cloudformation package` expects."""
    output.parent.mkdir(parents=True, exist_ok=True)
    code_uri = os.path.relpath(lambda_zip.resolve(), output.parent.resolve())
    rendered = render(cfn_yaml.load(BASE_TEMPLATE), feeds_from_contracts(), functions_from_registry(), code_uri)
    header = (
        "# GENERATED by `python -m filegate_deploy template` from infra/aws/filegate.yaml, include/feeds/*.yaml\n"
        "# and filegate.functions.catalog. Do not edit; edit those and re-render (make template).\n"
    )
    output.write_text(header + cfn_yaml.dump(rendered))
    return output
