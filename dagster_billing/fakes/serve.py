"""`billing fakes serve` and `billing fakes run`: the three contract servers for demos."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path

from dagster_billing.fakes import RunningFakes, start_fakes

DEFAULT_PORTS = {"netsuite": 8701, "salesforce": 8702, "stripe": 8703}


def write_env_file(fakes: RunningFakes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in fakes.environment().items()]
    path.write_text("\n".join(lines) + "\n")


def describe(fakes: RunningFakes) -> str:
    return "\n".join(
        [
            *(f"{name:<10} {url}" for name, url in fakes.urls.items()),
            f"CA bundle  {fakes.ca_bundle} (Salesforce TLS)",
            "admin      GET /_fake/state, POST /_fake/faults, POST /_fake/reset on each server",
        ]
    )


def state(fakes: RunningFakes) -> str:
    return json.dumps(
        {
            name: {
                "requests": fake.requests,
                **fake.state(),
                "faults_injected": dict(fake.faults.injected),
            }
            for name, fake in fakes.fakes.items()
        },
        indent=2,
        default=str,
    )


def serve(state_dir: Path, env_file: Path | None, ports: dict[str, int], **faults) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    fakes = start_fakes(state_dir, ports=ports, **faults)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print(describe(fakes), flush=True)
        if env_file:
            write_env_file(fakes, env_file)
            print(f"environment for the sync resources: source {env_file}", flush=True)
        stop.wait()
    finally:
        fakes.stop()


def run(state_dir: Path, command: list[str], ports: dict[str, int], **faults) -> int:
    """Start the servers, run `command` with the sync environment set, print what they hold."""
    fakes = start_fakes(state_dir, ports=ports, **faults)
    try:
        print(describe(fakes), flush=True)
        completed = subprocess.run(command, env={**os.environ, **fakes.environment()}, check=False)
        print(state(fakes), flush=True)
        return completed.returncode
    finally:
        fakes.stop()
