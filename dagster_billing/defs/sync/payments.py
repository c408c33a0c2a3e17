"""payments/stripe_invoice_status: after the Stripe pushes, finalize the Stripe draft invoices
whose lines are all there and read every invoice's payment status back into
payments.stripe_invoice_status (the dbt source of billing.fct_invoice_payments, hence the asset
key). Like a push asset, a graph:
load (pool duckdb) -> collect (pool stripe_api) -> record (pool duckdb)."""

import dagster as dg

from dagster_billing.defs import groups
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.defs.sync.factory import PUSH_TAG
from dagster_billing.defs.sync.resources import STRIPE_POOL
from dagster_billing.sync.payments import (
    STATUS_TABLE,
    BookedInvoice,
    Collection,
    booked_invoices,
    collect,
    record_statuses,
)

STATUS_KEY = dg.AssetKey(["payments", "stripe_invoice_status"])
FINALIZED_CHECK = "invoices_finalized"


@dg.op(name="stripe__invoice_status__load", pool=DUCKDB_POOL, ins={"after": dg.In(dg.Nothing)})
def load_booked(warehouse: BillingWarehouse) -> list[BookedInvoice]:
    with warehouse.connect(read_only=True) as connection:
        return booked_invoices(connection)


@dg.op(name="stripe__invoice_status__collect", pool=STRIPE_POOL, required_resource_keys={"stripe"})
def collect_statuses(context: dg.OpExecutionContext, invoices: list[BookedInvoice]) -> Collection:
    if not invoices:
        return Collection()
    api = context.resources.stripe.client()
    try:
        return collect(api, invoices)
    finally:
        api.close()


@dg.op(
    name="stripe__invoice_status__record",
    pool=DUCKDB_POOL,
    out={"result": dg.Out(), FINALIZED_CHECK: dg.Out(dg.Nothing)},
)
def record_collection(context: dg.OpExecutionContext, warehouse: BillingWarehouse, collection):
    with warehouse.connect() as connection:
        recorded = record_statuses(connection, collection.statuses)
    by_status: dict[str, int] = {}
    for status in collection.statuses:
        by_status[status.status] = by_status.get(status.status, 0) + 1
    drafts = [s.invoice_id for s in collection.statuses if s.status == "draft"]
    yield dg.Output(
        recorded,
        "result",
        metadata={
            "invoices_read": dg.MetadataValue.int(recorded),
            "finalized_now": dg.MetadataValue.int(len(collection.finalized)),
            "by_status": dg.MetadataValue.json(by_status),
            "incomplete_drafts": dg.MetadataValue.json(collection.incomplete[:50]),
            "failed": dg.MetadataValue.json(collection.failed[:50]),
            "table": dg.MetadataValue.text(STATUS_TABLE),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=STATUS_KEY,
        check_name=FINALIZED_CHECK,
        passed=not drafts and not collection.failed,
        metadata={
            "still_draft": dg.MetadataValue.json(drafts[:50]),
            "failed": dg.MetadataValue.json(collection.failed[:50]),
        },
    )


@dg.graph_asset(
    key=STATUS_KEY,
    ins={
        "after": dg.AssetIn(key=dg.AssetKey(["stripe", "invoice_items"]), dagster_type=dg.Nothing)
    },
    group_name=groups.REVERSE_ETL,
    kinds={"stripe"},
    # Talks to Stripe like the pushes (credentials, the stripe_api pool): in billing_sync.
    tags=dict([PUSH_TAG]),
    check_specs=[
        dg.AssetCheckSpec(
            FINALIZED_CHECK,
            asset=STATUS_KEY,
            description=(
                "Every final invoice pushed to Stripe is finalized there (no draft missing a "
                "line) and its status could be read."
            ),
        )
    ],
    description=(
        "Finalizes the Stripe draft invoice of each final invoice once all its lines are there and "
        f"appends every invoice's payment status (paid, open, uncollectible, void) to {STATUS_TABLE}, "
        "which billing.fct_invoice_payments, the receivables aging and dunning read."
    ),
)
def stripe_invoice_status(after):
    result, finalized = record_collection(collect_statuses(load_booked(after)))
    return {"result": result, f"{STATUS_KEY.to_python_identifier()}_{FINALIZED_CHECK}": finalized}
