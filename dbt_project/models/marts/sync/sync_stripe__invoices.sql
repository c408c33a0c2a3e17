{#-
  Stripe invoices (POST /v1/invoices), one per FINAL invoice: created as a draft that collects by
  sending the invoice (collection_method send_invoice, due_date = our due date, the last second
  of that UTC day), with our number, excluding the customer's other pending items; its lines are
  the invoice items of sync_stripe__invoice_items, attached by `invoice`. The payments/stripe_invoice_status
  asset finalizes it once every line is there and reads its payment status back.
  `customer` holds our account id; the push resolves it to the Stripe customer id.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
    where status = 'final'
),

payloads as (
    select
        invoice_id as external_id,
        {{ json_text(json_object([
            ('customer', 'account_id'),
            ('currency', 'lower(currency)'),
            ('collection_method', "'send_invoice'"),
            ('due_date', unix_seconds(dbt.dateadd('day', 1, 'due_on')) ~ ' - 1'),
            ('auto_advance', 'false'),
            ('pending_invoice_items_behavior', "'exclude'"),
            ('number', 'invoice_number'),
            ('description', dbt.concat(["'Usage '", date_text('period_start'), "' to '",
                                         date_text(dbt.dateadd('day', -1, 'period_end'))])),
            ('metadata', json_object([
                ('billing_invoice_id', 'invoice_id'),
                ('billing_invoice_number', 'invoice_number'),
                ('billing_issued_on', date_text('issued_on')),
                ('billing_due_on', date_text('due_on')),
                ('billing_total_minor', dbt.cast('total_minor', dbt.type_string())),
                ('billing_line_count', dbt.cast('line_count', dbt.type_string())),
            ])),
        ])) }} as payload
    from invoices
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
