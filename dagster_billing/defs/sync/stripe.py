"""Stripe, payment: customers (created once, then updated in place), and invoices (drafts that
payments/stripe_invoice_status finalizes) and their invoice items (integer minor units), created
once and updated only with resend_all. Idempotency keys derive from our ids and the payload hash."""

from dagster_billing.defs.sync.factory import Destination, build_push_assets
from dagster_billing.defs.sync.resources import STRIPE_POOL
from dagster_billing.sync import stripe_api
from dagster_billing.sync.push import SyncPlan
from dagster_billing.sync.reconcile import Report, reconcile_stripe, reconcile_stripe_fields


def _reconcile(plan: SyncPlan, api: stripe_api.StripeApi) -> Report:
    if plan.sync_object.reconcile == "fields":
        return reconcile_stripe_fields(api, plan)
    return reconcile_stripe(api, plan.expected_documents)


STRIPE = Destination(
    name="stripe",
    resource_key="stripe",
    pool=STRIPE_POOL,
    push=stripe_api.push,
    reconcile=_reconcile,
)

stripe_push_assets = build_push_assets(STRIPE)
