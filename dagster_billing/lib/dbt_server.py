"""A dbt fork server: dbt imported once, one forked child per `billing-dbt` invocation.

Every dbt command starts a Python process that imports dbt-core and its adapter before it reads
a single file: about 3 s of CPU on this project's 2-core machine, three times per pipeline run
(docs/testing.md). The server imports dbt once and waits on a Unix socket. `billing-dbt` (the
dbt executable Dagster runs) with `BILLING_DBT_SERVER=<socket>` set hands its command line,
working directory, environment and standard streams to the server, which forks a child that runs
dbt's own CLI exactly as `billing-dbt` would in a fresh process. dagster-dbt sees no difference:
the child writes to the client's stdout, and the client exits with the child's exit code.

- The child starts from the server's state right after import: nothing of an earlier invocation
  is inherited (each invocation is its own fork of the same parent, which never runs dbt).
- A signal to the client (SIGINT, SIGTERM: how dagster-dbt stops dbt on a cancelled run) is
  passed to the child. A client that dies without a word (SIGKILL) closes its socket, and the
  server then kills the child, so no dbt outlives the run that started it (and its DuckDB lock
  is released at once).
- The server is single-threaded (one selector loop), so forking it is safe.
- When nothing listens at the socket, `billing-dbt` runs dbt in its own process, as before:
  the server changes how fast dbt starts, never whether it runs.

Start it with `billing dbt-server --socket PATH` and export `BILLING_DBT_SERVER=PATH`. Restart
it after upgrading dbt or this package (it keeps the code it imported).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SERVER_ENV = "BILLING_DBT_SERVER"
# The client's standard streams, passed with the request (SCM_RIGHTS).
STREAMS = (0, 1, 2)
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LENGTH = struct.Struct("!I")
_STATUS = struct.Struct("!i")
# Imported once by the server: dbt's CLI and the default engine's adapter.
PRELOAD = ("dbt.cli.main", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl", "duckdb")


def exit_status(stop: SystemExit) -> int:
    """The exit code a process ending with `stop` reports: its int code, 0 for none, 1 else."""
    if stop.code is None:
        return 0
    return stop.code if isinstance(stop.code, int) else 1


def exit_code(wait_status: int) -> int:
    """A process's exit code as a shell reports it: 128 + N for a child killed by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def start_server(socket_path: Path, **popen_kwargs) -> subprocess.Popen:
    """`billing dbt-server` at `socket_path` in a child process that exits with this one; until it
    listens, `billing-dbt` runs dbt in its own process."""
    command = [Path(sys.executable).parent / "billing", "dbt-server", "--socket", socket_path]
    return subprocess.Popen([*map(str, command), "--exit-with-parent"], **popen_kwargs)


def wait_until_listening(server: subprocess.Popen, socket_path: Path, timeout: float) -> bool:
    """Whether the server started by start_server listens at `socket_path` within `timeout`
    seconds (False at once if it exited)."""
    deadline = time.monotonic() + timeout
    while not Path(socket_path).exists():
        if server.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- client -------------------------------------------------------------------------------------


def run_through_server(socket_path: str, argv: Sequence[str]) -> int | None:
    """Run `argv` (a billing-dbt command line) in a child of the server at `socket_path` with
    this process's working directory, environment and standard streams; its exit code, or None
    when no server answers there (the caller then runs dbt itself)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)
    except OSError:
        connection.close()
        return None
    with connection:
        request = json.dumps(
            {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
        ).encode()
        socket.send_fds(connection, [_LENGTH.pack(len(request))], list(STREAMS))
        connection.sendall(request)
        previous = {
            number: signal.signal(number, _forward_to(connection)) for number in FORWARDED_SIGNALS
        }
        try:
            status = _receive_exactly(connection, _STATUS.size)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    if status is None:
        print("billing-dbt: the dbt server closed the connection", file=sys.stderr)
        return 1
    return _STATUS.unpack(status)[0]


def _forward_to(connection: socket.socket) -> Callable:
    def forward(number, _frame) -> None:
        with contextlib.suppress(OSError):
            connection.send(bytes([number]))

    return forward


def _receive_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# --- server -------------------------------------------------------------------------------------


@dataclass
class _Invocation:
    connection: socket.socket
    pid: int
    pidfd: int
    client_gone: bool = False


@dataclass
class _Server:
    listener: socket.socket
    run: Callable[[Sequence[str]], int]
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    invocations: dict[int, _Invocation] = field(default_factory=dict)  # by pid

    def serve(self, *, idle_timeout: float | None, parent: int | None) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        idle_since = time.monotonic()
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                kind, target = (key.data, None) if isinstance(key.data, str) else key.data
                if kind == "accept":
                    self._accept()
                elif kind == "client":
                    self._client_readable(target)
                elif kind == "exited":
                    self._reap(target)
            if self.invocations:
                idle_since = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                return
            if parent is not None and os.getppid() != parent:
                return

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            connection.settimeout(10)
            header, fds, _, _ = socket.recv_fds(connection, _LENGTH.size, len(STREAMS))
            if len(header) < _LENGTH.size or len(fds) != len(STREAMS):
                raise OSError("incomplete request")
            body = _receive_exactly(connection, _LENGTH.unpack(header)[0])
            if body is None:
                raise OSError("incomplete request")
            request = json.loads(body)
        except (OSError, ValueError) as error:
            print(f"dbt server: bad request: {error}", file=sys.stderr)
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(connection, fds, request)
        for fd in fds:
            os.close(fd)
        connection.settimeout(None)
        invocation = _Invocation(connection, pid, os.pidfd_open(pid))
        self.invocations[pid] = invocation
        self.selector.register(connection, selectors.EVENT_READ, ("client", invocation))
        self.selector.register(invocation.pidfd, selectors.EVENT_READ, ("exited", invocation))

    def _child(self, connection: socket.socket, fds: list[int], request: dict) -> None:
        """In the forked child: become the client's dbt process, then exit with dbt's code."""
        code = 1
        try:
            for number in FORWARDED_SIGNALS:
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for target, fd in zip(STREAMS, fds, strict=True):
                os.dup2(fd, target)
                os.close(fd)
            # Fresh stream objects on the client's descriptors, as a new process would have
            # (the server's sys.stdout may not write to descriptor 1 at all).
            sys.stdin = open(0, closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
            self.selector.close()
            self.listener.close()
            connection.close()
            for other in self.invocations.values():
                other.connection.close()
                os.close(other.pidfd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = list(request["argv"])
            code = self.run(sys.argv)
        except SystemExit as stop:
            code = exit_status(stop)
        except BaseException:
            traceback.print_exc()
        finally:
            # What a dbt process does at exit (multiprocessing unlinks its semaphores, logging
            # flushes), without unwinding into the server's own loop and clean-up.
            atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)

    def _client_readable(self, invocation: _Invocation) -> None:
        try:
            data = invocation.connection.recv(64)
        except OSError:
            data = b""
        if data:
            for number in data:
                _signal(invocation.pid, number)
            return
        # The client is gone (killed): no one waits for this dbt any more.
        invocation.client_gone = True
        self.selector.unregister(invocation.connection)
        _signal(invocation.pid, signal.SIGKILL)

    def _reap(self, invocation: _Invocation) -> None:
        _, status = os.waitpid(invocation.pid, 0)
        self.selector.unregister(invocation.pidfd)
        os.close(invocation.pidfd)
        if not invocation.client_gone:
            self.selector.unregister(invocation.connection)
            with contextlib.suppress(OSError):
                invocation.connection.sendall(_STATUS.pack(exit_code(status)))
        invocation.connection.close()
        del self.invocations[invocation.pid]

    def shutdown(self) -> None:
        for invocation in list(self.invocations.values()):
            _signal(invocation.pid, signal.SIGKILL)
            os.waitpid(invocation.pid, 0)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def serve(
    socket_path: Path,
    run: Callable[[Sequence[str]], int],
    *,
    idle_timeout: float | None = None,
    exit_with_parent: bool = False,
    preload: Sequence[str] = PRELOAD,
    prepare: Callable[[], object] | None = None,
) -> None:
    """Import `preload` (dbt), call `prepare` (work every fork inherits), listen at
    `socket_path` and run `run(argv)` in a fork per request, until SIGTERM/SIGINT,
    `idle_timeout` seconds without an invocation, or (with `exit_with_parent`) the death of the
    process that started the server."""
    import importlib

    for module in preload:
        importlib.import_module(module)
    if prepare is not None:
        prepare()
    # What every fork inherits goes to the collector's permanent generation: a child's
    # collections skip those objects, instead of walking them and writing to their pages
    # (copy-on-write). About 0.2-0.5 CPU-s less per dbt build of fixture data (alternated
    # builds, docs/testing.md, twenty-seventh round); the Python docs' advice for fork servers.
    gc.collect()
    gc.freeze()
    parent = os.getppid() if exit_with_parent else None
    socket_path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(16)
    server = _Server(listener, run)

    def stop(_number, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"dbt server: listening at {socket_path}", file=sys.stderr, flush=True)
    try:
        server.serve(idle_timeout=idle_timeout, parent=parent)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        listener.close()
        socket_path.unlink(missing_ok=True)
