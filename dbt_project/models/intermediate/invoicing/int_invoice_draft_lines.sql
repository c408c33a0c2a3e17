{#-
  Every line of every open invoice, numbered in print order: rating's lines (in rating's
  line_sequence) and late-usage adjustments (the gross amount), percentage coupons, then fixed
  coupons and prepaid credits drawn (negative amounts). Every amount is already rounded; the invoice total is their sum.
-#}
with lines as (
    select
        invoice_line_id, invoice_id, line_type, account_id, period_start, period_end, currency,
        minor_units, charge_id, meter_code, dimension_value, pricing_model, description, quantity,
        unit_price, amount_unrounded, amount, amount_minor, corrects_invoice_id, corrects_line_id,
        cast(null as {{ dbt.type_string() }}) as instrument_id,
        0 as instrument_rank,
        line_sequence
    from {{ ref('int_invoice_draft_charges') }}

    union all

    select
        invoice_line_id, invoice_id, line_type, account_id, period_start, period_end, currency,
        minor_units,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        amount_unrounded, amount, amount_minor,
        cast(null as {{ dbt.type_string() }}) as corrects_invoice_id,
        cast(null as {{ dbt.type_string() }}) as corrects_line_id,
        instrument_id,
        0 as instrument_rank,
        cast(null as integer) as line_sequence
    from {{ ref('int_invoice_discounts') }}

    union all

    select
        invoice_line_id, invoice_id, line_type, account_id, period_start, period_end, currency,
        minor_units,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        meter_code,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        amount_unrounded, amount, amount_minor,
        cast(null as {{ dbt.type_string() }}) as corrects_invoice_id,
        cast(null as {{ dbt.type_string() }}) as corrects_line_id,
        instrument_id,
        instrument_rank,
        cast(null as integer) as line_sequence
    from {{ ref('int_invoice_draws') }}
)

select
    invoice_line_id,
    invoice_id,
    row_number() over (
        partition by invoice_id
        order by {{ line_sort_key('line_type') }}, line_sequence, line_type, instrument_rank, charge_id,
            corrects_line_id, instrument_id, invoice_line_id
    ) as line_number,
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
    cast(amount as {{ money_type() }}) as amount,
    cast(amount_minor as bigint) as amount_minor,
    corrects_invoice_id,
    corrects_line_id,
    instrument_id
from lines
