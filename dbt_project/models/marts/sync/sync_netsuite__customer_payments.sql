{#-
  NetSuite customer payments, one per final invoice paid in Stripe (billing.fct_invoice_payments),
  upserted with PUT /record/v1/customerpayment/eid:pay-<invoice_id>. NetSuite has no writable
  payment status on an invoice: an invoice turns from Open to Paid In Full when customer payments
  applied to it (the keyed `apply` sublist: doc = the invoice, amount) cover what it owes. So the
  payment status reaches NetSuite as the payment itself (decision 79): `payment` is what Stripe
  collected, applied to the invoice up to what it still owes after credit notes (any excess stays
  unapplied on the payment, as NetSuite keeps it). `customer.externalId` and the applied invoice's
  `doc.externalId` are resolved to NetSuite internal ids from the sync ledger (meta.sync.references),
  so a payment waits until its invoice is in NetSuite. tranDate is the day Stripe marked it paid
  (UTC).
-#}
with paid as (
    select
        *,
        case
            when amount_paid < amount_due - credited then amount_paid
            else amount_due - credited
        end as amount_applied
    from {{ ref('fct_invoice_payments') }}
    where payment_status = 'paid' and amount_paid > 0
),

applied as (
    select
        invoice_id,
        {{ json_array_agg(json_object([
            ('doc', json_object([('externalId', 'invoice_id')])),
            ('apply', 'true'),
            ('amount', money_text('amount_applied', 'minor_units')),
        ]), 'invoice_id') }} as items
    from paid
    where amount_applied > 0
    group by invoice_id
),

payloads as (
    select
        {{ dbt.concat(["'pay-'", 'paid.invoice_id']) }} as external_id,
        {{ json_text(json_object([
            ('customer', json_object([('externalId', 'paid.account_id')])),
            ('subsidiary', json_object([('id', sql_literal(var('netsuite_subsidiary_id')))])),
            ('currency', json_object([('id', netsuite_currency_id('paid.currency'))])),
            ('tranDate', date_text('coalesce(paid.paid_at, paid.status_observed_at)')),
            ('payment', money_text('paid.amount_paid', 'paid.minor_units')),
            ('memo', dbt.concat(["'Paid invoice '", 'paid.invoice_number', "' (Stripe '",
                                  "coalesce(paid.processor_invoice_id, '')", "')'"])),
            ('apply', json_object([('items', 'applied.items')])),
        ])) }} as payload
    from paid
    inner join applied on paid.invoice_id = applied.invoice_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
