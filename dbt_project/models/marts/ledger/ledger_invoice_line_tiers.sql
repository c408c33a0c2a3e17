{#-
  The tier breakdown of every final invoice's rated lines, frozen when the invoice was booked
  (the PDF prints it; later usage never changes it). Append-only like ledger_document_lines, and
  read the same way: the tiers the previous run computed for the lines just booked.
-#}
{{ config(on_schema_change='fail') }}

with proposed as (
    select * from {{ previous_run_relation('int_invoice_draft_line_tiers', ledger_tier_columns()) }} as tiers
),

booked_lines as (
    select line_id, ledger_version
    from {{ ref('ledger_document_lines') }}
    where document_type = 'invoice'
    {% if is_incremental() %}
        and line_id not in (select line_id from {{ this }})
    {% endif %}
)

select
    {{ dbt.concat(["proposed.line_id", "':'", dbt.cast("proposed.tier_number", dbt.type_string())]) }}
        as tier_line_id,
    proposed.line_id,
    proposed.invoice_id,
    proposed.tier_number,
    proposed.lower_bound,
    proposed.upper_bound,
    proposed.unit_price,
    proposed.tier_quantity,
    proposed.flat_fee_charged,
    proposed.amount_unrounded
from proposed
inner join booked_lines
    on proposed.line_id = booked_lines.line_id
    and proposed.ledger_version = booked_lines.ledger_version
