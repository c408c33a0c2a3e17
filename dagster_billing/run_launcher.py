"""A dead run never holds the `duckdb` pool: Dagster's run monitoring, for runs on this machine.

DuckDB has one writer, so every step that writes the warehouse runs in the `duckdb` pool, limit
1 (dagster.yaml). A step's slot is given back when its process ends the step, which a SIGKILLed
(or OOM-killed) process never does: the run stays STARTED and keeps the slot, and every later
run waits for it for ever. Dagster's run monitoring (the daemon's MONITORING thread) fails such
runs, but only asks run launchers that can check a run's worker, which the default launcher
cannot: `BillingRunLauncher` is the default launcher plus that check. A run's worker is the
process that logged the run's first `pid` (the run process of the code server, or the process
of an in-process execution such as `billing watch`); the run is failed once that process is gone
(or a zombie, or a newer process with the same pid). Run monitoring then frees the failed run's
slots after `free_slots_after_run_end_seconds`.

`billing watch` runs without the daemon, so it applies the same check itself before every run
(`fail_dead_runs`). One machine: a pid means nothing on another host.

Warm run workers (`warm_worker: true` in dagster.yaml). The default launcher asks the code server
for a new process per run, which spends about 11 s importing Dagster, dbt and this code location
before the run's first step: most of the landing sensor's event -> rated time. With a warm worker
the launcher (in the daemon) keeps one process that has done those imports already and is waiting
on its stdin (`python -m dagster_billing.run_launcher`); a run is handed to it as the arguments
`dagster api execute_run` takes, and it runs the run exactly as that command does, then exits. The
next warm worker starts importing as soon as one is handed a run. A worker whose code changed under
it (a Python file it loaded from outside the venv, or a dbt source) runs `dagster api execute_run`
afresh instead,
so an edited code location is never run stale. A run is still one process: its pid is what run
monitoring checks, and terminating a run sends it SIGINT, as the code server would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import psutil
from dagster._core.events import EngineEventData
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.base import LaunchRunContext
from dagster._core.origin import RepositoryPythonOrigin
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value, serialize_value

# A run without a recorded worker pid this long after it started has lost its worker.
START_GRACE_SECONDS = 60.0


def run_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, logged at) of the run's worker: the first run-level engine event with a pid."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or event.step_key is not None:
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value), entry.timestamp
    return None


def run_worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    worker = run_worker(instance, run.run_id)
    if worker is None:
        record = instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record and record.start_time else time.time()
        if time.time() - started > START_GRACE_SECONDS:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no run worker pid was recorded")
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    if _alive(*worker):
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {worker[0]} is gone")


def _alive(pid: int, logged_at: float) -> bool:
    """The process that logged `pid` at `logged_at` still runs (not a zombie, not a newer
    process given the same pid)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= logged_at + 1
    except psutil.NoSuchProcess:
        return False


class BillingRunLauncher(dg.DefaultRunLauncher):
    """The default run launcher, whose runs run monitoring can check, and which can hand runs to
    warm workers (see the module doc)."""

    def __init__(self, inst_data=None, warm_worker: bool = False) -> None:
        super().__init__(inst_data=inst_data)
        self._warm_worker = warm_worker
        self._lock = threading.Lock()
        self._ready: subprocess.Popen | None = None

    @classmethod
    def config_type(cls) -> dict:
        return {"warm_worker": dg.Field(bool, is_required=False, default_value=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BillingRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        if not self._warm_worker:
            super().launch_run(context)
            return
        run = context.dagster_run
        origin = run.job_code_origin.repository_origin
        request = ExecuteRunArgs(
            job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
        )
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is not None and (
                ready.poll() is not None or ready.args[-1] != _argument(origin)
            ):
                ready.stdin.close()  # gone, or warmed for another code location: let it go
                ready = None
            if ready is None:
                ready = _start_warm_worker(origin)
            try:
                _hand(ready, request)
            except BrokenPipeError:  # it died while waiting: a new one
                ready = _start_warm_worker(origin)
                _hand(ready, request)
            # Reaped as soon as it ends (its CPU then counts as the daemon's children's).
            threading.Thread(target=ready.wait, daemon=True).start()
            # The next run's worker imports while this one runs.
            self._ready = _start_warm_worker(origin)
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished or GRPC_INFO_TAG in run.tags:
            return super().terminate(run_id)
        # A warm worker's run: interrupt its process, as the code server does its own.
        worker = run_worker(self._instance, run_id)
        if worker is None or not _alive(*worker):
            return False
        self._instance.report_run_canceling(run)
        os.kill(worker[0], signal.SIGINT)
        return True

    def dispose(self) -> None:
        with self._lock:
            if self._ready is not None:
                self._ready.stdin.close()  # a waiting worker exits at the end of its input
                self._ready = None

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return run_worker_health(self._instance, run)


# The metadata key of the engine event a warm worker reports when it is handed a run.
WARM_WAITED = "warm_worker_waited_s"
# What dbt and runs write under the dbt project directory (not sources): dbt's target/, logs/
# and packages, and hidden paths (.user.yml, the seeds runs stage in .reference/).
DBT_OUTPUTS = {"target", "logs", "dbt_packages"}


def _argument(origin: RepositoryPythonOrigin) -> str:
    return serialize_value(origin)


def _start_warm_worker(origin: RepositoryPythonOrigin) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster_billing.run_launcher", _argument(origin)],
        stdin=subprocess.PIPE,
    )


def _hand(worker: subprocess.Popen, request: ExecuteRunArgs) -> None:
    worker.stdin.write(serialize_value(request).encode() + b"\n")
    worker.stdin.close()


def _code_version() -> tuple:
    """What a warm worker imported, by modification time: the Python files it loaded from
    outside the environment (this package, the code location's own files) and the dbt project's
    sources (dagster-dbt builds the dbt assets from their manifest; under `dagster dev` every
    process that imports this code location parses them again, the warm worker included, so the
    manifest itself changes with every worker)."""
    from dagster_billing.paths import DBT_PROJECT_DIR

    installed = (sys.prefix, sys.base_prefix)
    loaded = {
        Path(module.__file__)
        for module in list(sys.modules.values())
        if getattr(module, "__file__", None) and not module.__file__.startswith(installed)
    }
    dbt_sources = set()
    for root, dirs, files in os.walk(DBT_PROJECT_DIR):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in DBT_OUTPUTS]
        dbt_sources |= {Path(root) / name for name in files if not name.startswith(".")}
    return tuple(
        (str(path), path.stat().st_mtime_ns)
        for path in sorted(loaded | dbt_sources)
        if path.exists()
    )


def warm_worker(origin_argument: str) -> None:
    """Load the code location `origin_argument` names (Dagster, dbt and this package with it),
    wait for one run's `dagster api execute_run` arguments on stdin and run it; nothing on stdin
    (the launcher went away, or wanted another code location): exit."""
    from dagster._cli.api import execute_run_command
    from dagster._utils.hosted_user_process import recon_repository_from_origin

    started = time.monotonic()
    origin = deserialize_value(origin_argument, RepositoryPythonOrigin)
    recon_repository_from_origin(origin).get_definition()
    imported, loaded = _code_version(), time.monotonic()
    request = sys.stdin.readline().strip()
    waited = time.monotonic() - loaded
    if not request:
        return
    if _code_version() != imported:  # edited since: run it from a fresh interpreter
        os.execv(sys.executable, [sys.executable, "-m", "dagster", "api", "execute_run", request])
    arguments = deserialize_value(request, ExecuteRunArgs)
    with dg.DagsterInstance.from_ref(arguments.instance_ref) as instance:
        instance.report_engine_event(
            f"Run handed to a warm worker (pid {os.getpid()}): it had loaded the code location "
            f"in {loaded - started:.1f} s, {waited:.1f} s before the run came.",
            instance.get_run_by_id(arguments.run_id),
            EngineEventData({WARM_WAITED: dg.MetadataValue.float(round(waited, 3))}),
        )
    execute_run_command.callback(input_json=request, compressed_input_json=None)


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail every started run whose worker is gone and free its concurrency slots (what run
    monitoring does, for processes without the daemon). The ids of the runs failed."""
    failed = []
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        health = run_worker_health(instance, record.dagster_run)
        if health.status in (WorkerStatus.RUNNING, WorkerStatus.SUCCESS):
            continue
        instance.report_run_failed(
            record.dagster_run, f"Run worker is gone ({health.msg}): marked failed."
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        failed.append(record.dagster_run.run_id)
    return failed


if __name__ == "__main__":
    try:
        warm_worker(sys.argv[1])
    except KeyboardInterrupt:  # Ctrl-C on `make dev` reaches a waiting worker too
        sys.exit(130)
