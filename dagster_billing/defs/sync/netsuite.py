"""NetSuite, the books: customers and invoices (and any other `sync_netsuite__*` model, e.g. credit
memos) upserted by external id through SuiteTalk REST."""

from dagster_billing.defs.sync.factory import Destination, build_push_assets
from dagster_billing.defs.sync.resources import NETSUITE_POOL
from dagster_billing.sync import netsuite
from dagster_billing.sync.push import SyncPlan
from dagster_billing.sync.reconcile import Report, reconcile_netsuite, reconcile_netsuite_fields


def _reconcile(plan: SyncPlan, client: netsuite.NetSuiteClient) -> Report:
    if plan.sync_object.reconcile == "fields":
        return reconcile_netsuite_fields(client, plan)
    return reconcile_netsuite(
        client, plan.sync_object.option("record_type"), plan.expected_documents
    )


NETSUITE = Destination(
    name="netsuite",
    resource_key="netsuite",
    pool=NETSUITE_POOL,
    push=netsuite.push,
    reconcile=_reconcile,
)

netsuite_push_assets = build_push_assets(NETSUITE)
