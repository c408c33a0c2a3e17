{#- Tier breakdown of rated invoice lines: frozen for final invoices, current for drafts. -#}
select
    line_id as invoice_line_id, invoice_id, tier_number, lower_bound, upper_bound, unit_price,
    tier_quantity, flat_fee_charged, amount_unrounded
from {{ ledger_tiers() }}

union all

select
    line_id as invoice_line_id, invoice_id, tier_number, lower_bound, upper_bound, unit_price,
    tier_quantity, flat_fee_charged, amount_unrounded
from {{ ref('int_invoice_draft_line_tiers') }}
where invoice_id not in (
    select document_id from {{ ledger_lines() }} where document_type = 'invoice'
)
