{#-
  NetSuite credit memos, one per issued credit note (immutable, from the ledger), upserted with
  PUT /record/v1/creditmemo/eid:<credit_note_id>?replace=item. tranId is the credit note number,
  tranDate the day it was issued; `createdFrom.externalId` names the final invoice it credits and
  `entity.externalId` our account: the push resolves both to NetSuite internal ids recorded in the
  sync ledger (meta.sync.references), so a credit memo waits until its invoice is in NetSuite.
  Amounts are positive (a credit memo's lines are what is credited); lines go out as quantity 1.
-#}
with notes as (
    select * from {{ ref('fct_credit_notes') }}
),

lines as (
    select * from {{ ref('fct_credit_note_lines') }}
),

items as (
    select
        lines.credit_note_id,
        {{ json_array_agg(json_object([
            ('item', json_object([('id', sql_literal(var('netsuite_usage_item_id')))])),
            ('description', 'lines.description'),
            ('quantity', "'1'"),
            ('amount', money_text('lines.amount', 'lines.minor_units')),
        ]), 'lines.line_number') }} as items
    from lines
    group by lines.credit_note_id
),

payloads as (
    select
        notes.credit_note_id as external_id,
        {{ json_text(json_object([
            ('tranId', 'notes.credit_note_number'),
            ('entity', json_object([('externalId', 'notes.account_id')])),
            ('createdFrom', json_object([('externalId', 'notes.invoice_id')])),
            ('subsidiary', json_object([('id', sql_literal(var('netsuite_subsidiary_id')))])),
            ('currency', json_object([('id', netsuite_currency_id('notes.currency'))])),
            ('tranDate', date_text('notes.issued_on')),
            ('memo', dbt.concat(["'Credit for invoice '", 'notes.invoice_number', "' ('",
                                  'notes.reason', "')'"])),
            ('item', json_object([('items', 'items.items')])),
        ])) }} as payload
    from notes
    inner join items on notes.credit_note_id = items.credit_note_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
