import dagster as dg
from pydantic import Field

from dagster_billing.defs import groups
from dagster_billing.defs.ingest.landing import land_files, landing_files
from dagster_billing.defs.ingest.raw_store import RAW_TABLES
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse


class LandingConfig(dg.Config):
    paths: list[str] = Field(
        default_factory=list,
        description=(
            "Files to land, relative to the landing directory (the landing sensor names the new "
            "ones). Empty: every file under the landing directory; already landed content is "
            "skipped either way."
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
    """Land every new NDJSON/CSV file of the landing directory (and its subdirectories),
    validated with pandera, into the raw Parquet layer that both engines read."""
    for key, metadata in land(warehouse, config.paths, context.log).items():
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def land(
    warehouse: BillingWarehouse, paths: list[str], log: dg.DagsterLogManager
) -> dict[dg.AssetKey, dict]:
    """Land `paths` (relative to the landing directory; empty: every file there) and return the
    metadata of each raw table's materialization. Shared by raw_usage and the fast path's op."""
    landing_dir = warehouse.landing_dir
    if paths:
        files = [landing_dir / name for name in paths]
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise dg.Failure(f"landing files not found: {', '.join(missing[:10])}")
    else:
        files = landing_files(landing_dir)
    store = warehouse.raw_store
    landed = land_files(store, files, landing_dir=landing_dir)
    for result in landed:
        if not result.skipped and len(landed) <= 100:
            log.info(
                f"{result.file_name}: {result.rows} rows, {result.accepted} valid, "
                f"{result.quarantined} quarantined"
            )
    totals = store.row_counts()
    new = [item for item in landed if not item.skipped]
    run_metadata = {
        "new_files": len(new),
        "skipped_files": len(landed) - len(new),
        "new_rows": sum(item.rows for item in new),
        "new_quarantined": sum(item.quarantined for item in new),
    }
    return {
        dg.AssetKey(["raw", table]): {
            "row_count": dg.MetadataValue.int(totals[table]),
            **run_metadata,
        }
        for table in RAW_TABLES
    }
