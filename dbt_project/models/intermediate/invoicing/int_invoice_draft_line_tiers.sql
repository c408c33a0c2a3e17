{#- The tiers a rated line of an open invoice reached (rating's int_usage_rated), for the PDF,
    with the ledger version they were computed against (see int_ledger_proposals). -#}
with lines as (
    select * from {{ ref('int_invoice_draft_lines') }}
    where line_type not in {{ lifecycle_line_types() }}
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
    on lines.invoice_id = rated.invoice_id
    and lines.charge_id = rated.charge_id
where rated.tier_quantity > 0 or rated.flat_fee_charged > 0
