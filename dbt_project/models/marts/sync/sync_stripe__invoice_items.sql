{#-
  Stripe invoice items (POST /v1/invoiceitems), one per invoice line, amounts in integer minor units
  (cents; yen for JPY). `customer` holds our account id; the push resolves it to the Stripe customer
  id recorded in the sync ledger. Stripe's period end is inclusive: the last second of the period.
-#}
with lines as (
    select * from {{ ref('fct_invoice_lines') }}
),

payloads as (
    select
        invoice_line_id as external_id,
        {{ json_text(json_object([
            ('customer', 'account_id'),
            ('amount', 'amount_minor'),
            ('currency', 'lower(currency)'),
            ('description', 'description'),
            ('period', json_object([
                ('start', unix_seconds('period_start')),
                ('end', unix_seconds('period_end') ~ ' - 1'),
            ])),
            ('metadata', json_object([
                ('billing_invoice_id', 'invoice_id'),
                ('billing_line_id', 'invoice_line_id'),
                ('billing_line_number', dbt.cast('line_number', dbt.type_string())),
            ])),
        ])) }} as payload
    from lines
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
