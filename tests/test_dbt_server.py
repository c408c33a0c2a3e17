"""The dbt fork server (lib/dbt_server.py): `billing-dbt` through it behaves as dbt in its own
process: same output, exit code, working directory and environment; a signal to the client
reaches dbt; a client killed outright takes its dbt with it; no server means dbt runs as before.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagster_billing.lib.dbt_server import SERVER_ENV, run_through_server, serve
from dagster_billing.paths import DBT_PROJECT_DIR

BIN = Path(sys.executable).parent


def fake_dbt(argv) -> int:
    """Stands in for dbt in the server's children: `env NAME`, `cwd`, `exit N`, `wait PIDFILE`."""
    command, *args = argv[1:]
    if command == "env":
        print(os.environ.get(args[0], "<unset>"))
    elif command == "cwd":
        print(os.getcwd())
    elif command == "exit":
        return int(args[0])
    elif command == "wait":
        # Written whole, then renamed: the test reads the pid as soon as the file exists.
        staged = Path(f"{args[0]}.tmp")
        staged.write_text(str(os.getpid()))
        staged.replace(args[0])
        time.sleep(120)
    return 0


def _wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def fake_server(tmp_path):
    socket_path = tmp_path / "dbt.sock"
    process = multiprocessing.get_context("fork").Process(
        target=serve, args=(socket_path, fake_dbt), kwargs={"preload": ()}, daemon=True
    )
    process.start()
    _wait_for(socket_path.exists, "the server's socket")
    yield socket_path
    process.terminate()
    process.join(10)


def _client_code(socket_path: Path) -> str:
    """A billing-dbt stand-in: `python -c CODE args...` runs `dbt args...` through the server."""
    return (
        "import sys; from dagster_billing.lib.dbt_server import run_through_server; "
        f"sys.exit(run_through_server({str(socket_path)!r}, ['dbt', *sys.argv[1:]]))"
    )


def _client(socket_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _client_code(socket_path), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=socket_path.parent,
    )


def test_the_child_gets_the_clients_environment_directory_streams_and_exit_code(fake_server):
    environment = os.environ | {"BILLING_RUN_AS_OF": "2026-03-10T00:00:00"}
    env = subprocess.run(
        [sys.executable, "-c", _client_code(fake_server), "env", "BILLING_RUN_AS_OF"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=fake_server.parent,
    )
    assert (env.returncode, env.stdout) == (0, "2026-03-10T00:00:00\n")
    cwd = _client(fake_server, "cwd")
    assert cwd.communicate(timeout=30)[0] == f"{fake_server.parent}\n"
    failed = _client(fake_server, "exit", "3")
    failed.communicate(timeout=30)
    assert failed.returncode == 3


def test_a_signal_to_the_client_reaches_dbt(fake_server, tmp_path):
    pid_file = tmp_path / "child.pid"
    client = _client(fake_server, "wait", str(pid_file))
    _wait_for(pid_file.exists, "the child to start")
    child = int(pid_file.read_text())
    client.send_signal(signal.SIGTERM)
    client.communicate(timeout=30)
    assert client.returncode == 128 + signal.SIGTERM
    _wait_for(lambda: not _alive(child), "the child to stop")


def test_a_client_killed_outright_takes_its_dbt_with_it(fake_server, tmp_path):
    pid_file = tmp_path / "child.pid"
    client = _client(fake_server, "wait", str(pid_file))
    _wait_for(pid_file.exists, "the child to start")
    child = int(pid_file.read_text())
    client.kill()
    client.wait(timeout=30)
    _wait_for(lambda: not _alive(child), "the orphaned child to be killed")


def test_without_a_server_the_client_says_so_and_the_caller_runs_dbt(tmp_path):
    assert run_through_server(str(tmp_path / "nobody.sock"), ["dbt", "--version"]) is None


@pytest.mark.slow
def test_billing_dbt_through_the_server_is_dbt(tmp_path):
    """The real server and `billing-dbt`: the same answers as dbt in its own process."""
    socket_path = tmp_path / "dbt.sock"
    server = subprocess.Popen(
        [BIN / "billing", "dbt-server", "--socket", str(socket_path), "--exit-with-parent"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(socket_path.exists, "the dbt server", seconds=120)
        on_its_own = {name: value for name, value in os.environ.items() if name != SERVER_ENV}

        def billing_dbt(environment: dict[str, str]) -> list[subprocess.CompletedProcess]:
            return [
                subprocess.run(
                    [BIN / "billing-dbt", *args],
                    cwd=DBT_PROJECT_DIR,
                    env=environment,
                    capture_output=True,
                    text=True,
                )
                for args in (["--version"], ["no-such-command"])
            ]

        through = billing_dbt(on_its_own | {SERVER_ENV: str(socket_path)})
        alone = billing_dbt(on_its_own)
        assert [(r.returncode, r.stdout) for r in through] == [
            (r.returncode, r.stdout) for r in alone
        ]
        assert [r.returncode for r in through] == [0, 2]
        assert "No such command 'no-such-command'" in through[1].stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not socket_path.exists()
