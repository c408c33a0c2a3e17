"""`billing watch`: the landing sensor's logic in a loop, running its runs (rate_new_usage, then
land_and_rate) in process.

For machines without the Dagster daemon (`dagster dev` runs the real `landing_sensor`). Runs go
into the Dagster instance of $DAGSTER_HOME when it is set, so they show in the UI. Run either
this loop or the daemon's sensor, not both: two processes would write the DuckDB file at once.

Without the daemon there is no run monitoring either: before each run, runs whose process is
gone (a `billing watch` killed with SIGKILL) are failed and their `duckdb` pool slot freed, so
the next run never waits for a dead one (`run_launcher.fail_dead_runs`). A failed run is not
the end of its files: they are not landed, so the next poll asks for them again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from dagster_billing.defs.resources import BillingWarehouse


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def prepare_dbt(warehouse: BillingWarehouse) -> None:
    """Parse the dbt project with the environment runs will use (data dir, seed path).

    dagster-dbt copies target/partial_parse.msgpack into each run's target folder, but dbt
    discards it and parses everything again (seconds) when the profile or an env var read by
    dbt_project.yml differs from parse time: here, BILLING_DATA_DIR and BILLING_SEEDS_DIR."""
    from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
    from dagster_billing.paths import DBT_PROJECT_DIR

    with warehouse.dbt_environment():
        subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet"], cwd=DBT_PROJECT_DIR, check=True, env=os.environ
        )


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    if result.success:
        return False
    failure = result.get_run_failure_event().event_specific_data
    return getattr(failure, "failure_reason", None) is not None and (
        failure.failure_reason.name == "UNEXPECTED_TERMINATION"
    )


def _saved(path: Path, cursor: dict) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cursor))
    return cursor


def watch(
    data_dir: Path,
    *,
    interval: float = 1.0,
    once: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    from dagster_billing.definitions import defs
    from dagster_billing.defs.ingest.sensors import landing_run_request
    from dagster_billing.run_launcher import fail_dead_runs

    os.environ["BILLING_DATA_DIR"] = str(Path(data_dir).resolve())
    warehouse = BillingWarehouse(data_dir=str(data_dir))
    cursor_path = warehouse.root / "api" / "watch_cursor.json"
    cursor = json.loads(cursor_path.read_text()) if cursor_path.exists() else {}
    instance = _instance()
    prepare_dbt(warehouse)
    while True:
        request, new_cursor = landing_run_request(warehouse, cursor, instance=instance)
        if request is not None:
            for run_id in fail_dead_runs(instance):
                echo(f"run {run_id}: its process is gone; marked failed, its pool slots freed")
            started = time.monotonic()
            result = defs.resolve_job_def(request.job_name).execute_in_process(
                run_config=request.run_config,
                partition_key=request.partition_key,
                instance=instance,
                tags={**request.tags, "dagster/run_key": request.run_key},
                raise_on_error=False,
            )
            if _interrupted(result):
                # Ctrl-C during a run: Dagster turns it into a failed run; stop here. The cursor
                # is not advanced: the next watch repeats the run (landing skips landed files).
                raise KeyboardInterrupt
            # Files a failed run did not land are still not landed: the next poll asks for them
            # again; a failed land_and_rate is retried (the cursor remembers it).
            cursor = _saved(cursor_path, new_cursor)
            echo(
                f"{request.run_key}: {request.tags['billing/landing_files']} files, "
                f"{'ok' if result.success else 'FAILED'} in {time.monotonic() - started:.1f}s "
                f"(run {result.run_id})"
            )
        elif new_cursor != cursor:
            cursor = _saved(cursor_path, new_cursor)
        if once:
            return
        time.sleep(interval)
