"""What the endpoint serves: each function's name, handler, timeout, memory and environment, from a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: float = 900.0
    memory: int = 128
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> FunctionSpec:
        return cls(
            name=name,
            handler=str(data["handler"]),
            timeout=float(data.get("timeout", 900)),
            memory=int(data.get("memory", 128)),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        )


@dataclass
class EndpointConfig:
    functions: dict[str, FunctionSpec]
    pythonpath: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    task_root: str | None = None

    @classmethod
    def load(cls, path: Path) -> EndpointConfig:
        data = json.loads(path.read_text())
        return cls(
            functions={n: FunctionSpec.from_json(n, d) for n, d in (data.get("functions") or {}).items()},
            pythonpath=[str(p) for p in data.get("pythonpath") or []],
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            task_root=data.get("task_root"),
        )
