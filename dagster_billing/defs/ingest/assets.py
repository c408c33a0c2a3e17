import contextlib
import functools
import time

import dagster as dg
from pydantic import Field

from dagster_billing.defs import groups
from dagster_billing.defs.ingest.acknowledged import acknowledged_not_landed
from dagster_billing.defs.ingest.landing import LandedFile, land_files
from dagster_billing.defs.ingest.ledger import (
    LandingLedger,
    Stamp,
    landing_status,
    quiet_seconds,
)
from dagster_billing.defs.ingest.raw_store import RAW_TABLES
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

# Everything not landed yet, in one run (the sensor names at most ledger.MAX_FILES_PER_RUN).
MAX_FILES_LANDED = 100_000


class LandingConfig(dg.Config):
    paths: list[str] = Field(
        default_factory=list,
        description=(
            "The new files the landing sensor saw, relative to the landing directory (shown "
            "here and in the run's tags). Landing lands every file not landed yet either way, "
            "so a file a failed run left behind is landed by the next one."
        ),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", table],
            group_name=groups.LANDING,
            kinds={"parquet", "polars"},
            description=description,
        )
        for table, description in zip(
            RAW_TABLES,
            (
                "Structurally valid landed usage events (duplicates included).",
                "Landed rows that failed validation, with raw text and reason.",
                "Ledger of landed files (sha256, row count): re-landing a file adds nothing.",
            ),
            strict=True,
        )
    ],
    pool=DUCKDB_POOL,
)
def raw_usage(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse, config: LandingConfig
):
    """Land every NDJSON/CSV file of the landing directory (and its subdirectories) not landed
    yet, validated with pandera, into the raw Parquet layer that both engines read."""
    for key, metadata in land(warehouse, config.paths, context.log).items():
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _wait_until_quiet(warehouse: BillingWarehouse, names: list[str]) -> None:
    """Sleep until the newest of these files has been unchanged for the quiet time (at most
    that long)."""
    mtimes = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            mtimes.append(Stamp.of(warehouse.landing_dir / name).mtime_ns / 1e9)
    quiet = quiet_seconds()
    wait = max(mtimes, default=0.0) + quiet - time.time()
    if wait > 0:
        time.sleep(min(wait, quiet))


def land(
    warehouse: BillingWarehouse, paths: list[str], log: dg.DagsterLogManager
) -> dict[dg.AssetKey, dict]:
    """Land every file not landed yet (`paths`, the files the sensor saw, among them) and
    return the metadata of each raw table's materialization. Shared by raw_usage and the fast
    path's op. What was landed is recorded in the landing ledger after each commit."""
    landing_dir = warehouse.landing_dir
    ledger = LandingLedger(warehouse.root)
    store = warehouse.raw_store
    if ledger.align_with(store):
        log.warning("the landing ledger did not match the raw layer: every file is checked")
    # A run that names no files (billing_pipeline, a manual materialization) also looks
    # through api/ on disk, for files the API's ledger does not know.
    list_files = functools.partial(
        landing_status, warehouse.root, limit=MAX_FILES_LANDED, everything=not paths
    )
    status = list_files()
    if status.settling:
        # Files changed just now are waited for, then everything is listed again: what settled
        # meanwhile lands in its place in arrival order (file_seq follows it), so a replay
        # numbers the files as this run does.
        _wait_until_quiet(warehouse, status.settling)
        status = list_files()
        for name in status.settling:
            log.warning(f"{name}: still being written; left for the next run")
    for name in status.missing:
        log.error(f"{name}: acknowledged by the API but not on disk: its events are lost")
    for problem in status.unreadable.values():
        log.warning(f"{problem} (touch the file to retry)")
    waiting = set(status.waiting)
    absent = [name for name in paths if name not in waiting]
    landed = land_files(
        store, [landing_dir / name for name in status.ready], landing_dir=landing_dir
    )
    ledger.record(
        [result.entry for result in landed if result.entry is not None],
        api_seq_scanned=status.api_seq,
    )
    _log_results(landed, absent, log)
    totals = store.row_counts()
    new = [item for item in landed if not item.skipped]
    run_metadata = {
        "new_files": len(new),
        "skipped_files": len(landed) - len(new),
        "new_rows": sum(item.rows for item in new),
        "new_quarantined": sum(item.quarantined for item in new),
        "files_quarantined_whole": dg.MetadataValue.json(
            {item.file_name: item.problem for item in new if item.problem}
        ),
    }
    return {
        dg.AssetKey(["raw", table]): {
            "row_count": dg.MetadataValue.int(totals[table]),
            **run_metadata,
        }
        for table in RAW_TABLES
    }


def _log_results(landed: list[LandedFile], absent: list[str], log: dg.DagsterLogManager) -> None:
    for name in absent[:100]:
        log.info(f"{name}: landed before, or no longer there")
    for result in landed:
        if result.problem:
            log.warning(result.problem)
        elif not result.skipped and len(landed) <= 100:
            log.info(
                f"{result.file_name}: {result.rows} rows, {result.accepted} valid, "
                f"{result.quarantined} quarantined"
            )
        elif result.skipped and result.outcome == "no_complete_line":
            log.info(f"{result.file_name}: no complete line yet (lines end in a newline)")


@dg.asset_check(
    asset=dg.AssetKey(["raw", "usage_events"]),
    pool=DUCKDB_POOL,
    description=(
        "Every event the ingestion API acknowledged (202) is landed: each API landing file up to "
        "the last landing is in raw.landed_files with all its events accepted. Lists the files "
        "and ids that are not."
    ),
)
def acknowledged_events_landed(warehouse: BillingWarehouse) -> dg.AssetCheckResult:
    with warehouse.raw_store.connect() as connection:
        report = acknowledged_not_landed(connection, warehouse.root)
    return dg.AssetCheckResult(
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            name: dg.MetadataValue.json(value) if isinstance(value, list) else value
            for name, value in report.metadata().items()
        },
    )
