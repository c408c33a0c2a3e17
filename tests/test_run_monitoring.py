"""A run killed in the middle of `dbt build` does not keep the `duckdb` pool (issue 17, item 5).

With the repository's dagster.yaml, a real Dagster instance and daemon: a run holding the pool's
one slot is SIGKILLed (its worker and dbt, as the OOM killer or `docker kill` would), and the
next run in the pool completes without anyone touching anything. And the same for runs executed
in process (what `billing watch` does, without a daemon): `fail_dead_runs` frees their slots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster._core.storage.tags import GRPC_INFO_TAG

from dagster_billing.paths import DBT_PROJECT_DIR, REPO_ROOT
from dagster_billing.run_launcher import WARM_WAITED, fail_dead_runs, run_worker

LOCATION = Path(__file__).parent / "fixtures" / "run_monitoring" / "definitions.py"
DBT_PROJECT = LOCATION.parent / "dbt"
JOB = "dbt_in_the_duckdb_pool"
BIN = Path(sys.executable).parent


def wait_for(what: str, condition: Callable[[], object], seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RUN_MONITORING_TEST_DIR", str(tmp_path))
    # The instance's SQLite storages are created here, before a daemon and this process race to
    # create them ("table secondary_indexes already exists").
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_info("duckdb")
        instance.schedule_storage.all_instigator_state()
    return home


@pytest.fixture
def daemon(dagster_home) -> Iterator[dict]:
    """A Dagster daemon for LOCATION on `dagster_home` (run queue, run monitoring); yields the
    environment to launch runs with."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-f", str(LOCATION)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield env
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def launch(env: dict) -> None:
    completed = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-f", str(LOCATION), "-j", JOB],
        env=env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def holds_the_pool(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    claimed = instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
    return any(slot.run_id == run.run_id for slot in claimed)


def kill_tree(pid: int) -> None:
    process = psutil.Process(pid)
    for member in [*process.children(recursive=True), process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)


@pytest.mark.slow
def test_a_run_killed_mid_dbt_build_frees_the_duckdb_pool_for_the_next_run(daemon):
    with dg.DagsterInstance.get() as instance:
        first = launched(instance, daemon, [], 60)

        def dbt_running() -> int | None:
            """The run worker's pid once its step holds the pool and dbt runs."""
            worker = run_worker(instance, first.run_id)
            if worker is None:
                return None
            children = psutil.Process(worker[0]).children(recursive=True)
            building = any(str(DBT_PROJECT) in child.cmdline() for child in children)
            return worker[0] if building and holds_the_pool(instance, first) else None

        worker_pid = wait_for("dbt to start in the first run", dbt_running, 90)
        kill_tree(worker_pid)

        finished = ended(instance, launched(instance, daemon, [first]), 90)
        assert finished.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0


def warm_waits(instance: dg.DagsterInstance, run_id: str) -> list[float]:
    """How long the warm worker that ran `run_id` had waited for it (none: not a warm worker)."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    metadata = [entry.dagster_event.engine_event_data.metadata for entry in events]
    return [item[WARM_WAITED].value for item in metadata if WARM_WAITED in item]


def launched(
    instance: dg.DagsterInstance, env: dict, before: list, seconds: float = 30
) -> dg.DagsterRun:
    """Launch a run of JOB: the one run there is besides `before` (by id: a run's status
    changes)."""
    launch(env)
    earlier = {run.run_id for run in before}
    [run] = wait_for(
        "the run", lambda: [r for r in instance.get_runs() if r.run_id not in earlier], seconds
    )
    return run


def ended(instance: dg.DagsterInstance, run: dg.DagsterRun, seconds: float) -> dg.DagsterRun:
    """`run` once it has ended."""
    return wait_for(
        "the run to end",
        lambda: (now := instance.get_run_by_id(run.run_id)).is_finished and now,
        seconds,
    )


@pytest.mark.slow
def test_runs_go_to_a_warm_worker_and_are_terminated_through_it(daemon):
    """dagster.yaml's warm_worker: a run goes to a process that loaded the code location while
    the previous run ran (unless the code changed since); terminating a run interrupts its
    worker (no code server is involved) and the run ends CANCELED without keeping the pool."""
    with dg.DagsterInstance.get() as instance:
        # The first run's worker starts cold; the next one loads beside it and is ready before
        # the run ends (the run's worker loads the same code, then runs dbt).
        first = ended(instance, launched(instance, daemon, []), 90)
        assert first.status == dg.DagsterRunStatus.SUCCESS
        assert [round(w) for w in warm_waits(instance, first.run_id)] == [0]  # handed at once

        # The code location changed after that worker loaded it: the run runs afresh.
        os.utime(LOCATION)
        second = ended(instance, launched(instance, daemon, [first]), 90)
        assert second.status == dg.DagsterRunStatus.SUCCESS
        assert warm_waits(instance, second.run_id) == []

        # What runs write under the dbt project (staged seeds) does not make a worker stale.
        staged = DBT_PROJECT_DIR / ".reference" / f"test-{uuid.uuid4().hex}"
        staged.mkdir(parents=True)
        (staged / "accounts.csv").write_text("account_id\n")
        third = launched(instance, daemon, [first, second])
        shutil.rmtree(staged)
        wait_for("dbt in the third run", lambda: holds_the_pool(instance, third), 60)
        [waited] = warm_waits(instance, third.run_id)
        assert waited > 0.5  # loaded during the second run, not when this one came
        assert GRPC_INFO_TAG not in instance.get_run_by_id(third.run_id).tags

        assert instance.run_launcher.terminate(third.run_id)
        cancelled = ended(instance, third, 60)
        assert cancelled.status == dg.DagsterRunStatus.CANCELED
        assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0


def test_billing_watch_frees_the_pool_of_an_in_process_run_whose_process_died(dagster_home):
    """A `billing watch` killed mid-run leaves its run STARTED with the pool slot; the next
    watch fails that run and frees the slot before it runs anything."""
    script = (
        "import dagster as dg, sys\n"
        f"sys.path.insert(0, {str(LOCATION.parent)!r})\n"
        "from definitions import dbt_in_the_duckdb_pool as job\n"
        "job.execute_in_process(instance=dg.DagsterInstance.get())\n"
    )
    killed = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        with dg.DagsterInstance.get() as instance:
            [run] = wait_for("the run", lambda: instance.get_runs(), 60)
            wait_for("the run to hold the pool", lambda: holds_the_pool(instance, run), 60)
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

            assert fail_dead_runs(instance) == [run.run_id]
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0
            assert fail_dead_runs(instance) == []
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
