"""New landing files -> a fast run that rates them (rate_new_usage, see fast_path.py), then a run
of landing and everything downstream of it (land_and_rate: dbt models and tests, drafts, exports).

Which files are new is `ledger.landing_status`: every file not landed in its current state, read
from the landing ledger (a SQLite mirror of raw.landed_files), the API's ledger and the directory,
never from the warehouse, which a run may be writing. The cursor only remembers what was asked
for; it never decides that a file is done. So a run that fails leaves its files not landed, and
they are asked for again (with backoff) until a run lands them; a land_and_rate run that fails
is retried up to MAX_DRAFT_ATTEMPTS times. The sensor waits while either run is queued or
running, so a burst becomes one run, and names the files in the run's config and tags.
"""

import hashlib
import json
import os
from datetime import UTC, datetime

import dagster as dg

from dagster_billing.defs.dbt.partitions import USAGE_DAY_PARTITIONS
from dagster_billing.defs.ingest.assets import RAW_TABLES, raw_usage
from dagster_billing.defs.ingest.fast_path import land_new_files, rate_new_usage
from dagster_billing.defs.ingest.ledger import LandingStatus, landing_status
from dagster_billing.defs.jobs import NOT_IN_DAILY_RUNS
from dagster_billing.defs.resources import BillingWarehouse

# land_and_rate (tests, checks, drafts: ~30 s) waits until no new files came for QUIET_SECONDS
# after the last fast run was requested, so a steady stream keeps getting fast runs; but no
# landed file waits for it longer than MAX_DRAFT_LAG_SECONDS.
QUIET_SECONDS = 15
MAX_DRAFT_LAG_SECONDS = 60
# New files this large in all (BILLING_BULK_LANDING_BYTES; 32 MiB, about 250K events of 135
# bytes) skip the fast run: rating them takes about as long as land_and_rate does (1M events on
# 100M of history: 18.7 s against 21.9 s, bench/README.md), which would then rate them again.
DEFAULT_BULK_BYTES = 32 * 1024 * 1024
# Files still not landed after the run that was to land them are asked for again after
# RETRY_SECONDS, doubling per attempt up to MAX_RETRY_SECONDS (landing failing means the
# warehouse could not be written: full disk, a foreign lock; nothing is given up).
RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300
# A failed land_and_rate is run again this many times in all (a dbt test that fails keeps
# failing; the next new file starts a fresh one anyway).
MAX_DRAFT_ATTEMPTS = 3
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
FAILED_STATUSES = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
# What the cursor remembers: the last fast request, the files waiting for land_and_rate, the
# last land_and_rate request.
CURSOR_KEYS = ("asked", "pending", "drafts")

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


def bulk_bytes() -> int:
    """New files of at least this many bytes in all go straight to land_and_rate."""
    value = os.environ.get("BILLING_BULK_LANDING_BYTES")
    return int(value) if value else DEFAULT_BULK_BYTES


def _backoff(attempt: int) -> float:
    return min(RETRY_SECONDS * 2 ** max(attempt - 1, 0), MAX_RETRY_SECONDS)


def _tags(batch: dict) -> dict[str, str]:
    return {
        "billing/landing_files": str(len(batch["paths"])),
        "billing/api_events": str(batch["api_events"]),
    }


def _run_failed(instance: dg.DagsterInstance | None, run_key: str) -> bool | None:
    """True/False once the run with this run key finished; None while unknown or unfinished."""
    if instance is None:
        return None
    records = instance.get_run_records(
        dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1, order_by="create_timestamp"
    )
    if not records or not records[0].dagster_run.is_finished:
        return None
    return records[0].dagster_run.status in FAILED_STATUSES


def _draft_request(batch: dict, now: datetime, run_key: str) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=land_and_rate_job.name,
        run_key=run_key,
        partition_key=now.strftime(USAGE_DAY_PARTITIONS.fmt),
        run_config={"ops": {raw_usage.op.name: {"config": {"paths": batch["paths"]}}}},
        tags=_tags(batch),
    )


def _retried_drafts(
    cursor: dict, now: datetime, instance: dg.DagsterInstance | None
) -> tuple[dg.RunRequest | None, dict]:
    """The last land_and_rate again if it failed (after a backoff, MAX_DRAFT_ATTEMPTS in all)."""
    drafts = cursor.get("drafts")
    if not drafts:
        return None, cursor
    failed = _run_failed(instance, drafts["run_key"])
    if failed is False or (failed and drafts["attempt"] >= MAX_DRAFT_ATTEMPTS):
        return None, {key: value for key, value in cursor.items() if key != "drafts"}
    if not failed or now.timestamp() - drafts["at"] < _backoff(drafts["attempt"]):
        return None, cursor
    attempt = drafts["attempt"] + 1
    run_key = f"landing:{drafts['key']}:attempt-{attempt}"
    request = _draft_request(drafts, now, run_key)
    cursor = {
        **cursor,
        "drafts": {**drafts, "run_key": run_key, "attempt": attempt, "at": now.timestamp()},
    }
    asked = cursor.get("asked")
    if asked and set(asked["paths"]) <= set(drafts["paths"]):
        # A bulk batch that land_and_rate failed to land: this retry is also its next request.
        cursor["asked"] = {**asked, "attempt": asked["attempt"] + 1, "at": now.timestamp()}
    return request, cursor


def _fast_batch(status: LandingStatus, cursor: dict, now: datetime) -> dict | None:
    """The files to ask a fast run for now: new ones at once; files a finished run was asked
    for and did not land, after a backoff."""
    if not status.ready:
        return None
    asked = cursor.get("asked", {})
    asked_before = set(asked.get("paths", []))
    new = [name for name in status.ready if name not in asked_before]
    attempt = 1
    if not new:
        attempt = asked.get("attempt", 1) + 1
        if now.timestamp() - asked.get("at", 0) < _backoff(attempt - 1):
            return None
    paths = status.ready
    # Unique per request (the time is in it): Dagster never starts two runs with one run key,
    # and the same files may need asking for again.
    key = hashlib.sha256(json.dumps([paths, now.timestamp()]).encode()).hexdigest()[:16]
    return {
        "key": key,
        "paths": paths,
        "api_events": sum(status.api_events.values()),
        "bytes": sum(status.sizes.values()),
        "attempt": attempt,
    }


def landing_run_request(
    warehouse: BillingWarehouse,
    cursor: dict,
    now: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> tuple[dg.RunRequest | None, dict]:
    """The next run, and the cursor after it.

    Files not landed go to rate_new_usage (land, rate, API snapshot: the fast path) and wait
    in the cursor's `pending` for land_and_rate (partition: the UTC day of `now`), which runs
    the tests, checks, drafts and exports over them. land_and_rate runs once no new files have
    come for QUIET_SECONDS since the last fast run was requested, or once its oldest pending
    file has waited MAX_DRAFT_LAG_SECONDS: rated usage comes first, and drafts still follow a
    steady stream of events within about a minute. A bulk batch (at least bulk_bytes() of new
    files) goes to land_and_rate at once, with any pending files: the fast run would take about
    as long as land_and_rate and only do its rating twice. With `instance`, a failed
    land_and_rate is retried."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cursor = {key: value for key, value in cursor.items() if key in CURSOR_KEYS}
    retry, cursor = _retried_drafts(cursor, now, instance)
    if retry is not None:
        return retry, cursor
    pending = cursor.get("pending")
    status = landing_status(warehouse.root, now=now.timestamp())
    batch = _fast_batch(status, cursor, now)
    drafts_due = pending is not None and (
        (not status.waiting and now.timestamp() - pending["last"] >= QUIET_SECONDS)
        or now.timestamp() - pending["since"] >= MAX_DRAFT_LAG_SECONDS
    )
    if batch is not None and batch["bytes"] >= bulk_bytes():
        pending = _with_batch(pending, batch, now)
        cursor = {**cursor, "asked": _asked(batch, now)}
        drafts_due = True
    if drafts_due:
        run_key = f"landing:{pending['key']}"
        request = _draft_request(pending, now, run_key)
        # Files not landed yet are asked for again at the next tick.
        drafts = {**pending, "run_key": run_key, "attempt": 1, "at": now.timestamp()}
        after = {key: value for key, value in cursor.items() if key != "pending"}
        return request, {**after, "drafts": drafts}
    if batch is None:
        return None, cursor  # nothing new, or land_and_rate waits for a quiet moment
    request = dg.RunRequest(
        job_name=rate_new_usage.name,
        run_key=f"rate:{batch['key']}",
        run_config={"ops": {land_new_files.name: {"config": {"paths": batch["paths"]}}}},
        tags=_tags(batch),
    )
    pending = _with_batch(pending, batch, now)
    return request, {**cursor, "asked": _asked(batch, now), "pending": pending}


def _asked(batch: dict, now: datetime) -> dict:
    """What the cursor remembers of a request for `batch` (to ask again, after a backoff, for
    files it did not land)."""
    return {"paths": batch["paths"], "attempt": batch["attempt"], "at": now.timestamp()}


def _with_batch(pending: dict | None, batch: dict, now: datetime) -> dict:
    """The files waiting for land_and_rate once `batch` joins them."""
    if pending:
        merged_key = hashlib.sha256(f"{pending['key']}+{batch['key']}".encode()).hexdigest()[:16]
        pending = {
            "key": f"merged-{merged_key}",
            "paths": list(dict.fromkeys(pending["paths"] + batch["paths"])),
            "api_events": pending["api_events"] + batch["api_events"],
            "since": pending["since"],
        }
    else:
        pending = {**batch, "since": now.timestamp()}
    return {**pending, "last": now.timestamp()}


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
    request, new_cursor = landing_run_request(warehouse, cursor, instance=context.instance)
    if request is None:
        if new_cursor != cursor:
            context.update_cursor(json.dumps(new_cursor))
        return dg.SkipReason(
            "nothing to land, files still being written, a retry waiting for its backoff, or "
            "land_and_rate waiting for landing to go quiet"
        )
    context.update_cursor(json.dumps(new_cursor))
    return request
