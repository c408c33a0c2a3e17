{#- Invoice lines as printed: the plan's charge lines (each rounded once by round_money). -#}
with lines as (
    select * from {{ ref('int_invoice_charge_lines') }}
)

select
    invoice_line_id,
    invoice_id,
    row_number() over (partition by invoice_id order by line_type, charge_id, invoice_line_id) as line_number,
    line_type,
    account_id,
    period_start,
    period_end,
    currency,
    minor_units,
    charge_id,
    meter_code,
    dimension_value,
    pricing_model,
    description,
    quantity,
    unit_price,
    amount_unrounded,
    amount,
    amount_minor
from lines
