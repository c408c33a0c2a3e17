"""`billing_sync`: every push asset and its checks, after the pipeline built the sync models."""

import dagster as dg

from dagster_billing.defs.sync.factory import PUSHES

billing_sync = dg.define_asset_job(
    "billing_sync",
    selection=PUSHES,
    executor_def=dg.in_process_executor,
    description="Push changed sync_* rows to NetSuite, Salesforce and Stripe; reconcile.",
)
