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
"""

from __future__ import annotations

import time

import dagster as dg
import psutil
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

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
    pid, logged_at = worker
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= logged_at + 1
    except psutil.NoSuchProcess:
        alive = False
    if alive:
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")


class BillingRunLauncher(dg.DefaultRunLauncher):
    """The default run launcher, whose runs run monitoring can check (see the module doc)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return run_worker_health(self._instance, run)


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
