"""A local endpoint speaking Amazon Bedrock runtime's Converse API (`POST /model/{modelId}/converse`, JSON in and
out, as botocore sends and parses it), whose "model" answers with the text a test sets. It records every request
so tests can check what the model was told."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

CONVERSE = re.compile(r"^/model/(?P<model>[^/]+)/converse$")


@dataclass
class BedrockStub:
    url: str = ""
    reply: str = "CANNOT ANSWER"
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(stub: BedrockStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            match = CONVERSE.match(self.path)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not match:
                self._send(404, {"message": f"unknown operation {self.path}"}, "UnknownOperationException")
                return
            stub.requests.append({"model": unquote(match["model"]), "body": body,
                                  "signed": self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256")})
            self._send(200, {
                "output": {"message": {"role": "assistant", "content": [{"text": stub.reply}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 100, "outputTokens": 20, "totalTokens": 120},
                "metrics": {"latencyMs": 5},
            })

        def _send(self, code: int, payload: dict[str, Any], error: str | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def bedrock_stub() -> Iterator[BedrockStub]:
    stub = BedrockStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
