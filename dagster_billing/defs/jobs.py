import dagster as dg

from dagster_billing.defs.sync.factory import REVERSE_ETL_GROUP

# In-process: one step at a time, so the single DuckDB writer is never contended within a run.
billing_pipeline = dg.define_asset_job(
    "billing_pipeline",
    # Reverse-ETL pushes need destination credentials: they run in their own job, billing_sync.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(REVERSE_ETL_GROUP),
    executor_def=dg.in_process_executor,
    description="Compile plans, land usage files, build every dbt model, export invoices.",
)
