"""A local AWS Lambda: the Invoke API in front, AWS's own runtime client (awslambdaric) behind.

boto3 / Airflow's LambdaHook call `POST /2015-03-31/functions/{name}/invocations` here. Each function gets
one `python -m awslambdaric <handler>` process and its own Runtime API listener (one port per function
routes runtime calls without guessing), so invocations of one function are serialized like a single warm
sandbox. Timeouts kill and restart the runtime and answer like AWS (Sandbox.Timedout).

The parts: `functions` (what is served: names, handlers, limits), `sandbox` (one function's runtime process,
its output and its queue of invocations), `runtime_api` (the API awslambdaric polls), `invoke_api` (the API
boto3 calls), `server` (the two together, and the command line).

Run: python -m filegate_stack.lambda_endpoint --port 9150 --config functions.json
"""

from filegate_stack.lambda_endpoint.server import LambdaEndpoint, main

__all__ = ["LambdaEndpoint", "main"]
