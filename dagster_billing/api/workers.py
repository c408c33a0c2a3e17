"""`billing serve --workers N`: N uvicorn processes, each with its own listening socket.

uvicorn's own `--workers` binds one socket and shares it: every worker waits on it, and whichever
wakes first accepts. An idle worker can accept every connection that is waiting at once, so a few
long-lived keep-alive connections (an SDK's pool, a load generator) often all land on one worker
while the others idle. Here each worker binds the port itself with SO_REUSEPORT and the kernel
spreads new connections over the workers' sockets (by a hash of the client address and port),
whatever they are busy with: what nginx's and gunicorn's `reuseport` do.

The parent holds no socket (a socket that never accepts would still be given connections). It
starts the workers, passes SIGTERM / SIGINT on to them as SIGTERM (uvicorn drains, the landing
writer finishes its queue), and starts a worker again if one dies. SO_REUSEPORT lets any process
of the same user join the port: run the API as its own user.

A worker killed by a signal takes the connections queued on its socket with it: the kernel
resets them (Linux does not move them to the other sockets). Clients retry a reset request, as
the SDK does; the event's `uniqueId` makes the retry safe.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from types import FrameType

APP = "dagster_billing.api.app:create_app_from_env"
# A worker that exits by itself within this long of its start is not restarted: it cannot start
# (the port is taken, the data directory unreadable...), and the server stops instead of looping.
# One killed by a signal is always started again.
MIN_UPTIME_SECONDS = 5.0


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A socket bound to host:port; with `reuse_port`, other processes of this user may bind
    it too (and share its connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(host: str, port: int, log_level: str, reuse_port: bool = True) -> None:
    """One uvicorn server on its own socket (blocks until it is stopped)."""
    import uvicorn

    config = uvicorn.Config(
        APP, factory=True, host=host, port=port, log_level=log_level, access_log=False
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port, reuse_port=reuse_port)])


def serve(host: str, port: int, workers: int, log_level: str) -> int:
    """Run `workers` servers until SIGTERM / SIGINT; the exit status is 1 if one could not start."""
    if workers <= 1:  # a port of its own: a second server on it fails to start
        run_worker(host, port, log_level, reuse_port=False)
        return 0
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = context.Process(target=run_worker, args=(host, port, log_level), daemon=False)
        process.start()
        return process, time.monotonic()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # SIGTERM for SIGINT too: a terminal's Ctrl-C has already sent the workers one SIGINT,
        # and a second would make uvicorn skip the shutdown that drains the landing writer.
        nonlocal stopping
        stopping = True
        for process, _started in running:
            if process.is_alive():
                process.terminate()

    running = [start() for _ in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        time.sleep(0.2)
        for index, (process, started) in enumerate(running):
            if process.is_alive() or stopping:
                continue
            killed = (process.exitcode or 0) < 0  # by a signal, not failing on its own
            if not killed and time.monotonic() - started < MIN_UPTIME_SECONDS:
                status = 1
                stop(signal.SIGTERM, None)
                break
            running[index] = start()
    # A worker started again while the signal arrived has not been told to stop yet.
    for process, _started in running:
        if process.is_alive():
            process.terminate()
        process.join()
    return status
