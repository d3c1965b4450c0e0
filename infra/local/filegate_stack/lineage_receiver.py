"""A local OpenLineage backend: the target of the OpenLineage HTTP transport, storing every event it receives.

POST /api/v1/lineage  one OpenLineage event (JSON), as the HTTP transport sends it (gzip accepted) → 201
GET  /api/v1/lineage  stored events, oldest first; filters: run_id, job (name), namespace, file_id (the
                      `filegate` run facet), event_type, limit (default 1000)
GET  /_receiver/health, POST /_receiver/reset

Events are kept in memory and appended to <data-dir>/events.jsonl, so a restarted receiver still answers.
Run: python -m filegate_stack.lineage_receiver --port 8160 --data-dir DIR
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)
LINEAGE_PATH = "/api/v1/lineage"
MAX_BODY = 16 * 1024 * 1024


class EventStore:
    def __init__(self, data_dir: Path | None) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.path = (data_dir / "events.jsonl") if data_dir else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        self.events.append(json.loads(line))

    def add(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(event, separators=(",", ":")) + "\n")

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            if self.path is not None:
                self.path.write_text("", encoding="utf-8")

    def query(self, filters: dict[str, str], limit: int) -> list[dict[str, Any]]:
        with self.lock:
            events = list(self.events)
        return [e for e in events if _matches(e, filters)][-limit:]


def _matches(event: dict[str, Any], filters: dict[str, str]) -> bool:
    run, job = event.get("run") or {}, event.get("job") or {}
    facet = (run.get("facets") or {}).get("filegate") or {}
    checks = {"run_id": run.get("runId"), "job": job.get("name"), "namespace": job.get("namespace"),
              "file_id": str(facet.get("fileId")) if facet else None, "event_type": event.get("eventType")}
    return all(str(checks.get(name)) == value for name, value in filters.items() if name in checks)


def make_handler(store: EventStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_receiver/health":
                self._send(200, {"ok": True, "events": len(store.events)})
                return
            if url.path != LINEAGE_PATH:
                self._send(404, {"error": f"no route {url.path}"})
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                limit = max(1, min(int(query.pop("limit", "1000")), 10_000))
            except ValueError:
                self._send(400, {"error": "limit must be a whole number"})
                return
            self._send(200, {"events": store.query(query, limit)})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_receiver/reset":
                store.reset()
                self._send(200, {"reset": True})
                return
            if url.path != LINEAGE_PATH:
                self._send(404, {"error": f"no route {url.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "event too large"})
                return
            raw = self.rfile.read(length)
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    raw = gzip.decompress(raw)
                event = json.loads(raw)
            except (OSError, ValueError) as exc:
                self._send(400, {"error": f"not a JSON event: {exc}"})
                return
            if not isinstance(event, dict) or "eventTime" not in event or "producer" not in event:
                self._send(400, {"error": "an OpenLineage event needs eventTime and producer"})
                return
            store.add(event)
            self._send(201, {"stored": True})

    return Handler


def build_server(port: int, data_dir: Path | None) -> tuple[ThreadingHTTPServer, EventStore]:
    store = EventStore(data_dir)
    # FILEGATE_BIND_HOST=0.0.0.0 only inside a container (docker-compose.yaml); loopback everywhere else.
    server = ThreadingHTTPServer((os.environ.get("FILEGATE_BIND_HOST", "127.0.0.1"), port), make_handler(store))
    server.daemon_threads = True
    return server, store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local OpenLineage HTTP backend that stores every event")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server, _ = build_server(args.port, args.data_dir)

    def stop(signum: int, _frame: Any) -> None:
        logger.info("signal %s: stopping the lineage receiver", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("OpenLineage receiver on http://127.0.0.1:%s%s", args.port, LINEAGE_PATH)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
