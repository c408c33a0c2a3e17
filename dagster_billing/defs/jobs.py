import dagster as dg

# In-process: one step at a time, so the single DuckDB writer is never contended within a run.
billing_pipeline = dg.define_asset_job(
    "billing_pipeline",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Compile plans, land usage files, build every dbt model, export invoices.",
)
