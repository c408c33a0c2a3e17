"""Jobs. One run holds one partitions definition, so the pipeline is three jobs:

- billing_pipeline       (daily partition = UTC event day) land usage, rate, recompute every draft
- close_billing_period   (monthly partition = billing period) finalize closed periods into the
                         ledger, issue credit notes, refresh marts, exports and PDFs
- deliver_webhooks       send outbox events to the configured receiver

Reverse-ETL pushes need destination credentials: they run in their own job, billing_sync.
All run in process: one step at a time, so the single DuckDB writer is never contended in a run.
"""

import dagster as dg

from dagster_billing.defs import groups
from dagster_billing.defs.dbt.partitions import BILLING_PERIOD_PARTITIONS, USAGE_DAY_PARTITIONS
from dagster_billing.defs.invoicing.documents import PDF_KEY
from dagster_billing.defs.invoicing.webhooks import DELIVERIES_KEY
from dagster_billing.defs.sync.factory import PUSHES

LEDGER = dg.AssetSelection.groups(groups.LEDGER)
WEBHOOKS = dg.AssetSelection.assets(DELIVERIES_KEY)
PDFS = dg.AssetSelection.assets(PDF_KEY)
# The ledger is partitioned by billing period; PDFs of final invoices come from the close; webhook
# delivery and the pushes need endpoints and credentials.
NOT_IN_DAILY_RUNS = LEDGER | WEBHOOKS | PDFS | PUSHES

billing_pipeline = dg.define_asset_job(
    "billing_pipeline",
    selection=dg.AssetSelection.all() - NOT_IN_DAILY_RUNS,
    partitions_def=USAGE_DAY_PARTITIONS,
    executor_def=dg.in_process_executor,
    description=(
        "Compile plans, land usage files, rebuild the partition's usage days (and every day with "
        "new arrivals), rate, recalculate draft invoices, export."
    ),
)

close_billing_period = dg.define_asset_job(
    "close_billing_period",
    selection=LEDGER.downstream() - WEBHOOKS - PUSHES,
    partitions_def=BILLING_PERIOD_PARTITIONS,
    executor_def=dg.in_process_executor,
    description=(
        "Book the last drafts of every closed period up to the partition as final invoices, "
        "issue credit notes for late usage, refresh invoices, exports and PDFs."
    ),
)

deliver_webhooks = dg.define_asset_job(
    "deliver_webhooks",
    selection=WEBHOOKS,
    executor_def=dg.in_process_executor,
    description="Send pending invoice and usage webhooks (signed, retried, idempotent).",
)
