"""The whole local stack: start/stop/status of components, stack.json and stack.env bookkeeping."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filegate_stack.airflow import AirflowComponent, airflow_env
from filegate_stack.client_env import client_env, render_exports
from filegate_stack.component import Component, StackContext, dump_json
from filegate_stack.config import Ports, StackConfig
from filegate_stack.moto import MotoComponent
from filegate_stack.paths import StackPaths, default_home
from filegate_stack.postgres import PostgresComponent
from filegate_stack.procs import log_tail
from filegate_stack.services import (
    FtpComponent,
    LambdaComponent,
    LineageReceiverComponent,
    SftpComponent,
    StubApiComponent,
)

logger = logging.getLogger(__name__)

COMPONENT_NAMES = ("postgres", "moto", "lambda", "ftp", "sftp", "stub_api", "lineage", "airflow")
ALIASES = {"stub-api": "stub_api", "stub": "stub_api", "pg": "postgres", "aws": "moto"}


class StackError(RuntimeError):
    def __init__(self, component: str, message: str, log: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component
        self.log = log


def normalize(names: Iterable[str]) -> list[str]:
    result = []
    for raw in names:
        name = ALIASES.get(raw.strip(), raw.strip())
        if not name:
            continue
        if name not in COMPONENT_NAMES:
            raise ValueError(f"unknown component {raw!r}; known: {', '.join(COMPONENT_NAMES)}")
        result.append(name)
    return result


def _build_components() -> dict[str, Component]:
    components: list[Component] = [
        PostgresComponent(),
        MotoComponent(),
        LambdaComponent(),
        FtpComponent(),
        SftpComponent(),
        StubApiComponent(),
        LineageReceiverComponent(),
        AirflowComponent(),
    ]
    return {c.name: c for c in components}


class Stack:
    """Python API over the stack. Safe to construct in a fresh process: state comes from FILEGATE_HOME."""

    def __init__(self, home: Path | None = None, ports: Ports | None = None, config: StackConfig | None = None) -> None:
        paths = StackPaths((home or default_home()).resolve())
        saved = self._load_json(paths.stack_json)
        self.components = _build_components()
        state = dict(saved.get("state", {}))
        if ports is None:
            ports = Ports.from_env()
            probe = StackContext(paths, ports, config or StackConfig(), state)
            # A running stack keeps its ports, whatever this shell's environment says.
            if saved.get("ports") and any(c.partly_running(probe) for c in self.components.values()):
                ports = Ports.from_json(saved["ports"])
        self.ctx = StackContext(paths, ports, config or StackConfig(), state)

    @staticmethod
    def _load_json(path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    @property
    def home(self) -> Path:
        return self.ctx.paths.home

    @property
    def ports(self) -> Ports:
        return self.ctx.ports

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self, components: Iterable[str] | None = None) -> dict[str, str]:
        """Start the named components (default: all) in dependency order.

        Returns {component: "started" | "already running"}; raises StackError with the log tail of the
        component that did not come up (components started before it keep running).
        """
        wanted = set(normalize(components) if components is not None else COMPONENT_NAMES)
        self.ctx.paths.ensure()
        outcome: dict[str, str] = {}
        for name in COMPONENT_NAMES:
            if name not in wanted:
                continue
            component = self.components[name]
            if component.running(self.ctx):
                logger.info("%s is already running", name)
                outcome[name] = "already running"
                continue
            if component.partly_running(self.ctx):
                logger.warning("%s is partly running; restarting it", name)
                component.stop(self.ctx)
            logger.info("starting %s", name)
            try:
                component.start(self.ctx)
            except Exception as exc:
                logs = "\n".join(
                    f"--- {proc}.log ---\n{log_tail(self.ctx.paths.log_file(proc))}" for proc in component.processes
                )
                component.stop(self.ctx)
                self._save()
                raise StackError(name, str(exc), logs) from exc
            outcome[name] = "started"
            self._save()
        self._save()
        return outcome

    def stop(self, components: Iterable[str] | None = None) -> list[int]:
        """Stop components (default: all) in reverse order; returns pids that would not die."""
        wanted = set(normalize(components) if components is not None else COMPONENT_NAMES)
        leftovers: list[int] = []
        for name in reversed(COMPONENT_NAMES):
            if name in wanted:
                leftovers.extend(self.components[name].stop(self.ctx))
        if self.ctx.paths.home.exists():
            self._save()
        return leftovers

    # ---- views -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, component in self.components.items():
            pids = component.pids(self.ctx)
            running = component.running(self.ctx)
            result[name] = {
                "running": running,
                "state": "running" if running else ("degraded" if any(pids.values()) else "stopped"),
                "pids": pids,
                "urls": component.urls(self.ctx),
            }
        return result

    def env(self) -> dict[str, str]:
        """Env vars a client (test, CLI, `airflow ...`) needs; includes Airflow's settings."""
        return airflow_env(self.ctx) if self.ctx.paths.airflow_home.exists() else client_env(self.ctx)

    def urls(self) -> dict[str, dict[str, str]]:
        return {name: c.urls(self.ctx) for name, c in self.components.items()}

    def _save(self) -> None:
        status = self.status()
        dump_json(
            self.ctx.paths.stack_json,
            {"home": str(self.home), "ports": self.ctx.ports.to_json(), "components": status, "state": self.ctx.state},
        )
        self.ctx.paths.stack_env.write_text(
            "# Generated by filegate-stack; `source` it to talk to the local stack.\n" + render_exports(self.env())
        )
