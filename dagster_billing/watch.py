"""`billing watch`: the landing sensor's logic in a loop, running its runs (rate_new_usage, then
land_and_rate) in process.

For machines without the Dagster daemon (`dagster dev` runs the real `landing_sensor`). Runs go
into the Dagster instance of $DAGSTER_HOME when it is set, so they show in the UI. Run either
this loop or the daemon's sensor, not both: two processes would write the DuckDB file at once.
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


def watch(
    data_dir: Path,
    *,
    interval: float = 1.0,
    once: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    from dagster_billing.definitions import defs
    from dagster_billing.defs.ingest.sensors import landing_run_request

    os.environ["BILLING_DATA_DIR"] = str(Path(data_dir).resolve())
    warehouse = BillingWarehouse(data_dir=str(data_dir))
    cursor_path = warehouse.root / "api" / "watch_cursor.json"
    cursor = json.loads(cursor_path.read_text()) if cursor_path.exists() else {}
    instance = _instance()
    prepare_dbt(warehouse)
    while True:
        request, new_cursor = landing_run_request(warehouse, cursor)
        if request is not None:
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
            # Like the sensor, move on either way: the next run rebuilds from raw, and the
            # failed run is in the instance with its logs.
            cursor = new_cursor
            cursor_path.parent.mkdir(parents=True, exist_ok=True)
            cursor_path.write_text(json.dumps(cursor))
            echo(
                f"{request.run_key}: {request.tags['billing/landing_files']} files, "
                f"{'ok' if result.success else 'FAILED'} in {time.monotonic() - started:.1f}s "
                f"(run {result.run_id})"
            )
        if once:
            return
        time.sleep(interval)
