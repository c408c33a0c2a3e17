"""analytics/snapshot: after the marts of a run, publish them for readers (dagster_billing.analytics).

It depends on every published table, so it runs last in billing_pipeline, land_and_rate and
close_billing_period, and only when they succeeded. The fast path (rate_new_usage) publishes
the same way from an op (defs/ingest/fast_path.py).
"""

import dagster as dg

from dagster_billing.analytics.publish import publish_snapshot
from dagster_billing.analytics.tables import PUBLISHED_TABLES
from dagster_billing.defs import groups
from dagster_billing.defs.dbt.assets import run_as_of
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.duckdb_config import duckdb_config

SNAPSHOT_KEY = dg.AssetKey(["analytics", "snapshot"])


def publish_for_run(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, warehouse: BillingWarehouse
) -> dict:
    """Publish a snapshot of the warehouse as this run left it; its materialization metadata."""
    published = publish_snapshot(
        warehouse.duckdb_path,
        warehouse.root,
        run_id=context.run_id,
        as_of=run_as_of(context),
        duckdb_config=duckdb_config(),
    )
    context.log.info(
        f"published analytics snapshot {published.seq} in {published.seconds:.2f} s: "
        f"{published.path}"
        + (f", built on {published.built_on.name}" if published.built_on else "")
        + (f" (deleted {len(published.pruned)} old)" if published.pruned else "")
    )
    return {
        "path": dg.MetadataValue.path(str(published.path)),
        "seq": dg.MetadataValue.int(published.seq),
        "seconds": dg.MetadataValue.float(round(published.seconds, 3)),
        **{
            f"{name}_rows": dg.MetadataValue.int(count)
            for name, count in published.row_counts.items()
        },
        # Partitioned tables: how many of their partitions this publish wrote (decision 129).
        **{
            f"{name}_partitions_rewritten": dg.MetadataValue.text(f"{changed} of {partitions}")
            for name, (changed, partitions) in published.partitions_rewritten.items()
        },
    }


@dg.asset(
    key=SNAPSHOT_KEY,
    deps=[dg.AssetKey([schema, table]) for schema, table in PUBLISHED_TABLES],
    group_name=groups.ANALYTICS,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
)
def analytics_snapshot(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """The analyst-facing marts as a new immutable DuckDB file under analytics/, made current
    atomically (readers: `billing analytics path|shell`, the API, the portal)."""
    return dg.MaterializeResult(metadata=publish_for_run(context, warehouse))
