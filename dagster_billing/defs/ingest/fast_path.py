"""The fast path: new usage in billing/fct_rated_usage seconds after it lands.

A land_and_rate run builds every model downstream of raw/* with every dbt test and the finance
checks, in one dbt invocation (about 15 s on tiny data, most of it the tests and dbt's per-node
overhead). The `rate_new_usage` job is three ops: land the new files, ONE `dbt run` of the
models fct_rated_usage and fct_usage_quotas are built from (no seeds, no tests), and the analytics
snapshot (which the API reads). Outside an asset op dagster-dbt records each model it builds as an
AssetMaterialization of the same asset key as the @dbt_assets, so the asset catalog shows the
fast path's materializations too.

It does not replace land_and_rate: the landing sensor starts land_and_rate for the same files
next (landing skips them), which runs the dbt tests and the finance checks, recalculates the
draft invoices and refreshes the exports. Rated usage is visible in seconds; tested drafts follow
one run later.
"""

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_billing.defs.analytics.assets import SNAPSHOT_KEY, publish_for_run
from dagster_billing.defs.dbt.assets import stream_dbt
from dagster_billing.defs.dbt.project import billing_project
from dagster_billing.defs.dbt.translator import BillingTranslator
from dagster_billing.defs.ingest.assets import LandingConfig, land
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

# dbt's selection: the models fct_rated_usage is built from, and the quotas (a blocking quota's
# has_access is what the product reads to stop serving: decision 121); `dbt run` builds no seeds
# or tests. One argument: dbt reads the space as a union.
RATED_USAGE_SELECT = "+fct_rated_usage +fct_usage_quotas"


@dg.op(pool=DUCKDB_POOL, out=dg.Out(dg.Nothing))
def land_new_files(
    context: dg.OpExecutionContext, warehouse: BillingWarehouse, config: LandingConfig
):
    """The raw_usage asset's landing, for the files the sensor names."""
    for key, metadata in land(warehouse, config.paths, context.log).items():
        yield dg.AssetMaterialization(asset_key=key, metadata=metadata)


@dg.op(pool=DUCKDB_POOL, ins={"landed": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def rate_landed_usage(
    context: dg.OpExecutionContext, dbt: DbtCliResource, warehouse: BillingWarehouse
):
    """One `dbt run` of fct_rated_usage, fct_usage_quotas and their upstream models (incremental
    by arrival). It writes no manifest.json or run_results.json (nothing reads them; writing the
    whole project's manifest costs about 0.5 s of the run); dbt's partial-parse state is still
    kept."""
    yield from stream_dbt(
        context,
        dbt,
        warehouse,
        ["run", "--select", RATED_USAGE_SELECT, "--no-write-json"],
        manifest=billing_project.manifest_path,
        dagster_dbt_translator=BillingTranslator(),
    )


@dg.op(pool=DUCKDB_POOL, ins={"rated": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def publish_analytics_snapshot(context: dg.OpExecutionContext, warehouse: BillingWarehouse):
    """The analytics/snapshot asset's publish, so the API and analysts see the new rated usage."""
    yield dg.AssetMaterialization(
        asset_key=SNAPSHOT_KEY, metadata=publish_for_run(context, warehouse)
    )


@dg.job(
    executor_def=dg.in_process_executor,
    description=(
        "Fast path of the landing sensor: land the named files, rate them (one dbt run up to "
        "fct_rated_usage, no tests), publish the analytics snapshot. land_and_rate follows with the "
        "tests, checks, drafts and exports."
    ),
)
def rate_new_usage():
    publish_analytics_snapshot(rated=rate_landed_usage(landed=land_new_files()))
