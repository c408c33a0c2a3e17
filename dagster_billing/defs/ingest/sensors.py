"""New landing files -> a run of landing and everything downstream of it (dbt models, exports).

Where new files come from:
  - the ingestion API confirms each file it lands in its SQLite ledger with a sequence number in
    commit order, so "seq > cursor" never skips a file that a slower API worker finished later
    (a directory listing ordered by name could);
  - files dropped into the landing directory by hand (outside api/) are noticed by name, size and
    modification time.
The sensor waits while a land_and_rate run is queued or running, so a burst becomes one run, and
names every new file in the run's config so landing reads only those (not the whole history).
"""

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from dagster_billing.api.settings import API_LANDING_SUBDIR, api_state_path
from dagster_billing.api.state import read_landed_since
from dagster_billing.defs.ingest.assets import RAW_TABLES, raw_usage
from dagster_billing.defs.ingest.files import landing_format
from dagster_billing.defs.resources import BillingWarehouse
from dagster_billing.defs.sync.factory import REVERSE_ETL_GROUP

MAX_FILES_PER_RUN = 2000
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

LAND_AND_RATE = dg.AssetSelection.assets(*[dg.AssetKey(["raw", table]) for table in RAW_TABLES])

land_and_rate_job = dg.define_asset_job(
    "land_and_rate",
    # Reverse-ETL pushes need destination credentials: they run in their own job, billing_sync.
    selection=LAND_AND_RATE.downstream() - dg.AssetSelection.groups(REVERSE_ETL_GROUP),
    executor_def=dg.in_process_executor,
    description=(
        "Land the named files, then rebuild everything downstream of raw/* (dbt models and "
        "their checks, exports; not the reverse-ETL pushes). Started by landing_sensor."
    ),
)


def dropped_files(landing_dir: Path) -> dict[str, str]:
    """Landing files outside api/: relative path -> "size:mtime_ns"."""
    found = {}
    if not landing_dir.exists():
        return found
    for root, dirs, files in os.walk(landing_dir):
        here = Path(root)
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and not (here == landing_dir and d == API_LANDING_SUBDIR)
        ]
        for name in files:
            path = here / name
            if name.startswith(".") or not landing_format(path):
                continue
            stat = path.stat()
            found[path.relative_to(landing_dir).as_posix()] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return found


def landing_run_request(
    warehouse: BillingWarehouse, cursor: dict
) -> tuple[dg.RunRequest | None, dict]:
    """The run for files that are new since `cursor`, and the cursor after them."""
    api_seq = cursor.get("api_seq", 0)
    seen = cursor.get("dropped", {})
    from_api = read_landed_since(api_state_path(warehouse.root), api_seq, MAX_FILES_PER_RUN)
    dropped = dropped_files(warehouse.landing_dir)
    changed = sorted(name for name, stamp in dropped.items() if seen.get(name) != stamp)
    if not from_api and not changed:
        return None, cursor
    paths = changed + [path for _, path, _ in from_api]
    last_seq = from_api[-1][0] if from_api else api_seq
    dropped_key = hashlib.sha256(
        json.dumps([[name, dropped[name]] for name in changed]).encode()
    ).hexdigest()[:12]
    run_key = f"landing:api-{api_seq + 1}-{last_seq}:dropped-{dropped_key if changed else 'none'}"
    request = dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {raw_usage.op.name: {"config": {"paths": paths}}}},
        tags={
            "billing/landing_files": str(len(paths)),
            "billing/api_events": str(sum(events for _, _, events in from_api)),
        },
    )
    return request, {"api_seq": last_seq, "dropped": dropped}


@dg.sensor(
    job=land_and_rate_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts land_and_rate when the API or a person lands new usage files.",
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: BillingWarehouse):
    active = context.instance.get_run_records(
        dg.RunsFilter(job_name=land_and_rate_job.name, statuses=ACTIVE_STATUSES), limit=1
    )
    if active:
        return dg.SkipReason("a land_and_rate run is queued or running; new files wait for it")
    cursor = json.loads(context.cursor) if context.cursor else {}
    request, new_cursor = landing_run_request(warehouse, cursor)
    if request is None:
        return dg.SkipReason("no new landing files")
    context.update_cursor(json.dumps(new_cursor))
    return request
