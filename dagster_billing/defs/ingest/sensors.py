"""New landing files -> a fast run that rates them (rate_new_usage, see fast_path.py), then a run
of landing and everything downstream of it (land_and_rate: dbt models and tests, drafts, exports).

Where new files come from:
  - the ingestion API confirms each file it lands in its SQLite ledger with a sequence number in
    commit order, so "seq > cursor" never skips a file that a slower API worker finished later
    (a directory listing ordered by name could);
  - files dropped into the landing directory by hand (outside api/) are noticed by name, size and
    modification time.
The sensor waits while either run is queued or running, so a burst becomes one run, and names
every new file in the run's config so landing reads only those (not the whole history).
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from dagster_billing.api.settings import API_LANDING_SUBDIR, api_state_path
from dagster_billing.api.state import read_landed_since
from dagster_billing.defs.dbt.partitions import USAGE_DAY_PARTITIONS
from dagster_billing.defs.ingest.assets import RAW_TABLES, raw_usage
from dagster_billing.defs.ingest.fast_path import land_new_files, rate_new_usage
from dagster_billing.defs.ingest.files import landing_format
from dagster_billing.defs.jobs import NOT_IN_DAILY_RUNS
from dagster_billing.defs.resources import BillingWarehouse

MAX_FILES_PER_RUN = 2000
# land_and_rate (tests, checks, drafts: ~30 s) waits until no new files came for QUIET_SECONDS
# after the last fast run was requested, so a steady stream keeps getting fast runs; but no
# landed file waits for it longer than MAX_DRAFT_LAG_SECONDS.
QUIET_SECONDS = 15
MAX_DRAFT_LAG_SECONDS = 60
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

LAND_AND_RATE = dg.AssetSelection.assets(*[dg.AssetKey(["raw", table]) for table in RAW_TABLES])

land_and_rate_job = dg.define_asset_job(
    "land_and_rate",
    selection=LAND_AND_RATE.downstream() - NOT_IN_DAILY_RUNS,
    # The partition is the UTC day of the run: the daily models rebuild it and every day that
    # received the new files' events, whatever their day.
    partitions_def=USAGE_DAY_PARTITIONS,
    executor_def=dg.in_process_executor,
    description=(
        "Land the named files, then rebuild everything downstream of raw/* (dbt models and "
        "their checks, draft invoices, exports; not the ledger, PDFs, webhooks or reverse-ETL "
        "pushes). Started by landing_sensor."
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


def _new_files(warehouse: BillingWarehouse, cursor: dict) -> tuple[dict | None, dict]:
    """Files landed since `cursor` (a batch: a unique key, the paths, run tags), and the cursor
    fields after them."""
    api_seq = cursor.get("api_seq", 0)
    seen = cursor.get("dropped", {})
    from_api = read_landed_since(api_state_path(warehouse.root), api_seq, MAX_FILES_PER_RUN)
    dropped = dropped_files(warehouse.landing_dir)
    changed = sorted(name for name, stamp in dropped.items() if seen.get(name) != stamp)
    if not from_api and not changed:
        return None, {}
    last_seq = from_api[-1][0] if from_api else api_seq
    dropped_key = hashlib.sha256(
        json.dumps([[name, dropped[name]] for name in changed]).encode()
    ).hexdigest()[:12]
    batch = {
        "key": f"api-{api_seq + 1}-{last_seq}:dropped-{dropped_key if changed else 'none'}",
        "paths": changed + [path for _, path, _ in from_api],
        "api_events": sum(events for _, _, events in from_api),
    }
    return batch, {"api_seq": last_seq, "dropped": dropped}


def _tags(batch: dict) -> dict[str, str]:
    return {
        "billing/landing_files": str(len(batch["paths"])),
        "billing/api_events": str(batch["api_events"]),
    }


def landing_run_request(
    warehouse: BillingWarehouse, cursor: dict, now: datetime | None = None
) -> tuple[dg.RunRequest | None, dict]:
    """The next run, and the cursor after it.

    New files since `cursor` go to rate_new_usage (land, rate, API snapshot: the fast path) and
    wait in the cursor's `pending` for land_and_rate (partition: the UTC day of `now`), which
    finds them landed and runs the tests, checks, drafts and exports over them. land_and_rate
    runs once no new files have come for QUIET_SECONDS since the last fast run was requested,
    or once its oldest pending file has waited MAX_DRAFT_LAG_SECONDS: rated usage comes first,
    and drafts still follow a steady stream of events within about a minute."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    pending = cursor.get("pending")
    batch, after = _new_files(warehouse, cursor)
    drafts_due = pending is not None and (
        (batch is None and now.timestamp() - pending["last"] >= QUIET_SECONDS)
        or now.timestamp() - pending["since"] >= MAX_DRAFT_LAG_SECONDS
    )
    if drafts_due:
        request = dg.RunRequest(
            job_name=land_and_rate_job.name,
            run_key=f"landing:{pending['key']}",
            partition_key=now.strftime(USAGE_DAY_PARTITIONS.fmt),
            run_config={"ops": {raw_usage.op.name: {"config": {"paths": pending["paths"]}}}},
            tags=_tags(pending),
        )
        # New files of this tick, if any, are read again at the next one.
        return request, {key: value for key, value in cursor.items() if key != "pending"}
    if batch is None:
        return None, cursor  # nothing new, or land_and_rate waits for a quiet moment
    request = dg.RunRequest(
        job_name=rate_new_usage.name,
        run_key=f"rate:{batch['key']}",
        run_config={"ops": {land_new_files.name: {"config": {"paths": batch["paths"]}}}},
        tags=_tags(batch),
    )
    if pending:
        merged_key = hashlib.sha256(f"{pending['key']}+{batch['key']}".encode()).hexdigest()[:16]
        batch = {
            "key": f"merged-{merged_key}",
            "paths": pending["paths"] + batch["paths"],
            "api_events": pending["api_events"] + batch["api_events"],
            "since": pending["since"],
        }
    else:
        batch["since"] = now.timestamp()
    batch["last"] = now.timestamp()
    return request, {**after, "pending": batch}


@dg.sensor(
    jobs=[rate_new_usage, land_and_rate_job],
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Starts rate_new_usage (new usage rated in seconds), then land_and_rate (tests, checks, "
        "drafts, exports) when the API or a person lands new usage files."
    ),
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: BillingWarehouse):
    for job_name in (rate_new_usage.name, land_and_rate_job.name):
        active = context.instance.get_run_records(
            dg.RunsFilter(job_name=job_name, statuses=ACTIVE_STATUSES), limit=1
        )
        if active:
            return dg.SkipReason(f"a {job_name} run is queued or running; new files wait for it")
    cursor = json.loads(context.cursor) if context.cursor else {}
    request, new_cursor = landing_run_request(warehouse, cursor)
    if request is None:
        return dg.SkipReason("no new landing files, or land_and_rate waits for landing to go quiet")
    context.update_cursor(json.dumps(new_cursor))
    return request
