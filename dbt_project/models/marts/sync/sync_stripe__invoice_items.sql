{#-
  Stripe invoice items (POST /v1/invoiceitems), one per line of a FINAL invoice (drafts are not
  sent for payment), our invoice number and issue date in metadata; amounts in integer minor units
  (cents; yen for JPY). `customer` and `invoice` hold our account and invoice ids; the push
  resolves them to the Stripe customer and the Stripe draft invoice (sync_stripe__invoices)
  recorded in the sync ledger, so each item lands on its invoice. Stripe's period end is
  inclusive: the last second of the period.
-#}
with lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where status = 'final'
),

invoices as (
    select invoice_id, issued_on from {{ ref('fct_invoices') }}
    where status = 'final'
),

payloads as (
    select
        lines.invoice_line_id as external_id,
        {{ json_text(json_object([
            ('customer', 'lines.account_id'),
            ('invoice', 'lines.invoice_id'),
            ('amount', 'lines.amount_minor'),
            ('currency', 'lower(lines.currency)'),
            ('description', 'lines.description'),
            ('period', json_object([
                ('start', unix_seconds('lines.period_start')),
                ('end', unix_seconds('lines.period_end') ~ ' - 1'),
            ])),
            ('metadata', json_object([
                ('billing_invoice_id', 'lines.invoice_id'),
                ('billing_invoice_number', 'lines.invoice_number'),
                ('billing_issued_on', date_text('invoices.issued_on')),
                ('billing_line_id', 'lines.invoice_line_id'),
                ('billing_line_number', dbt.cast('lines.line_number', dbt.type_string())),
            ])),
        ])) }} as payload
    from lines
    inner join invoices on lines.invoice_id = invoices.invoice_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
