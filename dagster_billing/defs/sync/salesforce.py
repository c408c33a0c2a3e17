"""Salesforce, the field: billing fields on Accounts and Billing_Invoice__c records, upserted by
external id with sObject Collections (200 records per request)."""

from dagster_billing.defs.sync.factory import Destination, build_push_assets
from dagster_billing.defs.sync.resources import SALESFORCE_POOL
from dagster_billing.sync import salesforce
from dagster_billing.sync.push import SyncPlan
from dagster_billing.sync.reconcile import (
    Report,
    reconcile_salesforce,
    reconcile_salesforce_fields,
)


def _reconcile(plan: SyncPlan, client: salesforce.SalesforceClient) -> Report:
    if plan.sync_object.reconcile == "fields":
        return reconcile_salesforce_fields(client, plan)
    obj = plan.sync_object
    return reconcile_salesforce(
        client, obj.option("sobject"), obj.option("external_id_field"), plan.expected_documents
    )


SALESFORCE = Destination(
    name="salesforce",
    resource_key="salesforce",
    pool=SALESFORCE_POOL,
    push=salesforce.push,
    reconcile=_reconcile,
)

salesforce_push_assets = build_push_assets(SALESFORCE)
