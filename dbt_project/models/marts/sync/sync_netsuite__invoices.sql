{#-
  NetSuite invoices, one per FINAL billing invoice (drafts stay in the warehouse), upserted with
  PUT /record/v1/invoice/eid:<invoice_id>?replace=item so a re-sent invoice replaces its lines
  instead of appending to them. tranId is our invoice number, tranDate the day it was issued; a
  final invoice never changes, so it is pushed once (meta.sync.immutable). `entity.externalId` names our account; the push resolves it to the
  customer's NetSuite internal id recorded in the sync ledger (meta.sync.references).
  Lines without a quantity (recurring fees, discounts, commitment lines) go out as quantity 1.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
    where status = 'final'
),

lines as (
    select * from {{ ref('fct_invoice_lines') }}
),

items as (
    select
        invoice_id,
        {{ json_array_agg(json_object([
            ('item', json_object([('id', sql_literal(var('netsuite_usage_item_id')))])),
            ('description', 'description'),
            ('quantity', decimal_text('coalesce(quantity, cast(1 as ' ~ decimal_type() ~ '))')),
            ('amount', money_text('amount', 'minor_units')),
        ]), 'line_number') }} as items
    from lines
    group by invoice_id
),

payloads as (
    select
        invoices.invoice_id as external_id,
        {{ json_text(json_object([
            ('tranId', 'invoices.invoice_number'),
            ('entity', json_object([('externalId', 'invoices.account_id')])),
            ('subsidiary', json_object([('id', sql_literal(var('netsuite_subsidiary_id')))])),
            ('currency', json_object([('id', netsuite_currency_id('invoices.currency'))])),
            ('tranDate', date_text('invoices.issued_on')),
            ('dueDate', date_text('invoices.due_on')),
            ('memo', dbt.concat(["'Usage '", date_text('invoices.period_start'), "' to '",
                                  date_text(dbt.dateadd('day', -1, 'invoices.period_end')),
                                  "', plan '", 'invoices.plan_code', "' v'",
                                  dbt.cast('invoices.plan_version', dbt.type_string())])),
            ('item', json_object([('items', 'items.items')])),
        ])) }} as payload
    from invoices
    inner join items on invoices.invoice_id = items.invoice_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
