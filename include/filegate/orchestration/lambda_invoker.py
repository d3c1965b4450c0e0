"""Invokes Filegate's Lambda functions from Airflow tasks through the amazon provider's LambdaHook.

The hook takes the `aws_default` connection (its `service_config.lambda.endpoint_url` points at the local
stack's Lambda endpoint; on AWS it is absent). Settings that matter (research: LambdaInvokeFunctionOperator
pitfalls): botocore's read timeout outlasts the function's timeout (the 60 s default would fail any longer
run while the function goes on), TCP keepalive keeps idle NAT paths open, and client retries are off so that a
read timeout never starts the work a second time — the task's own Airflow retries do that, idempotently.
The function's error and the base64-decoded 4 KB log tail go to the task log and, through the raised error,
into the file's status-store error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from filegate.functions.invoke import Invoker, InvokeResult, botocore_config, parse_invoke_response
from filegate.orchestration.connections import AWS_CONN_ID

log = logging.getLogger(__name__)


def lambda_invoker(aws_conn_id: str = AWS_CONN_ID) -> Invoker:
    from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook
    from botocore.config import Config

    hooks: dict[str, Any] = {}
    lock = threading.Lock()  # parts are invoked from several threads; build each hook's client once

    def hook_for(function: str) -> Any:
        with lock:
            if function not in hooks:
                hook = LambdaHook(aws_conn_id=aws_conn_id, config=Config(**botocore_config(function)))
                _ = hook.conn  # create the client under the lock; boto3 clients are then thread-safe
                hooks[function] = hook
            return hooks[function]

    def invoke(function: str, payload: dict[str, Any]) -> InvokeResult:
        hook = hook_for(function)
        log.info("invoking Lambda %s (RequestResponse, %d bytes of event, read timeout %s s)", function,
                 len(json.dumps(payload)), botocore_config(function)["read_timeout"])
        started = time.monotonic()
        response = hook.invoke_lambda(function_name=function, invocation_type="RequestResponse", log_type="Tail",
                                      payload=json.dumps(payload))
        result = parse_invoke_response(function, response, started=started)
        log.info("Lambda %s answered in %.2f s (request %s)", function, result.seconds, result.request_id)
        return result

    return invoke
