import dagster as dg

from dagster_billing.defs.ingest.landing import ensure_raw_tables, land_file, landing_files
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

RAW_TABLES = ("usage_events", "usage_quarantine", "landed_files")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", table],
            group_name="ingest",
            kinds={"duckdb", "polars"},
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
def raw_usage(context: dg.AssetExecutionContext, warehouse: BillingWarehouse):
    """Land every new NDJSON/CSV file of the landing directory, validated with pandera."""
    files = landing_files(warehouse.landing_dir)
    landed = []
    with warehouse.connect() as connection:
        ensure_raw_tables(connection)
        for path in files:
            result = land_file(connection, path)
            landed.append(result)
            if not result.skipped:
                context.log.info(
                    f"{result.file_name}: {result.rows} rows, {result.accepted} valid, "
                    f"{result.quarantined} quarantined"
                )
        totals = dict(
            zip(
                RAW_TABLES,
                connection.execute(
                    """
                    select (select count(*) from raw.usage_events),
                           (select count(*) from raw.usage_quarantine),
                           (select count(*) from raw.landed_files)
                    """
                ).fetchone(),
                strict=True,
            )
        )
    new = [item for item in landed if not item.skipped]
    run_metadata = {
        "new_files": len(new),
        "skipped_files": len(landed) - len(new),
        "new_rows": sum(item.rows for item in new),
        "new_quarantined": sum(item.quarantined for item in new),
    }
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={"row_count": dg.MetadataValue.int(totals[table]), **run_metadata},
        )
