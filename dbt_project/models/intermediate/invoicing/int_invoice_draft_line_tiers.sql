{#- The tiers a usage charge line of an open invoice reached (rating's int_usage_rated, one row
    per tier of the line's plan version segment), for the PDF, with the ledger version they were
    computed against (see int_ledger_proposals). A line of a segment that covers part of the
    period shows the tiers of the whole period's quantity; its amount is weighted by days. -#}
with lines as (
    select * from {{ ref('int_invoice_draft_lines') }}
    where line_type = 'charge'
)

select
    lines.invoice_line_id as line_id,
    lines.invoice_id,
    rated.tier_number,
    rated.lower_bound,
    rated.upper_bound,
    rated.unit_price,
    rated.tier_quantity,
    rated.flat_fee_charged,
    rated.amount_unrounded,
    ledger_version.ledger_version
from lines
cross join (
    select count(distinct document_id) as ledger_version from {{ ledger_lines() }}
) as ledger_version
inner join {{ ref('int_usage_rated') }} as rated
    on lines.invoice_line_id = rated.invoice_line_id
where rated.tier_quantity > 0 or rated.flat_fee_charged > 0
