{#-
  Every line of every open invoice, numbered in print order: rating's lines (in rating's
  line_sequence) and late-usage adjustments (the gross amount), percentage coupons, then fixed
  coupons, the tax line (int_invoice_taxes: when the invoice's rate is above zero) and prepaid
  credits drawn (negative amounts). Every amount is already rounded; the invoice total is their sum.
  base_amount and rate_percent say what a percentage line is measured on (discounts,
  commitments, coupons, tax); tax_code names the rate of a tax line.
-#}
with lines as (
    select
        invoice_line_id, invoice_id, line_type, account_id, period_start, period_end, currency,
        minor_units, charge_id, meter_code, dimension_value, pricing_model, description, quantity,
        unit_price, base_amount, rate_percent,
        cast(null as {{ dbt.type_string() }}) as tax_code,
        amount_unrounded, amount, amount_minor, corrects_invoice_id, corrects_line_id,
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
        base_amount,
        rate_percent,
        cast(null as {{ dbt.type_string() }}) as tax_code,
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
        cast(null as {{ decimal_type() }}) as base_amount,
        cast(null as {{ decimal_type() }}) as rate_percent,
        cast(null as {{ dbt.type_string() }}) as tax_code,
        amount_unrounded, amount, amount_minor,
        cast(null as {{ dbt.type_string() }}) as corrects_invoice_id,
        cast(null as {{ dbt.type_string() }}) as corrects_line_id,
        instrument_id,
        instrument_rank,
        cast(null as integer) as line_sequence
    from {{ ref('int_invoice_draws') }}

    union all

    select
        {{ dbt.concat(["invoice_id", "':tax:'", "tax_code"]) }} as invoice_line_id,
        invoice_id,
        'tax' as line_type,
        account_id, period_start, period_end, currency, minor_units,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        tax_name as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(taxable_amount as {{ decimal_type() }}) as base_amount,
        rate_percent,
        tax_code,
        tax_amount_unrounded as amount_unrounded,
        tax_amount as amount,
        {{ to_minor_units('tax_amount', 'minor_units') }} as amount_minor,
        cast(null as {{ dbt.type_string() }}) as corrects_invoice_id,
        cast(null as {{ dbt.type_string() }}) as corrects_line_id,
        cast(null as {{ dbt.type_string() }}) as instrument_id,
        0 as instrument_rank,
        cast(null as integer) as line_sequence
    from {{ ref('int_invoice_taxes') }}
    where rate_percent > 0
)

select
    lines.invoice_line_id,
    lines.invoice_id,
    row_number() over (
        partition by lines.invoice_id
        order by {{ line_sort_key('lines.line_type') }}, lines.line_sequence, lines.line_type,
            lines.instrument_rank, lines.charge_id, lines.corrects_line_id, lines.instrument_id,
            lines.invoice_line_id
    ) as line_number,
    lines.line_type,
    lines.account_id,
    lines.period_start,
    lines.period_end,
    lines.currency,
    lines.minor_units,
    lines.charge_id,
    lines.meter_code,
    lines.dimension_value,
    lines.pricing_model,
    lines.description,
    lines.quantity,
    lines.unit_price,
    cast(lines.base_amount as {{ decimal_type() }}) as base_amount,
    cast(lines.rate_percent as {{ decimal_type() }}) as rate_percent,
    -- The rate every line but prepaid credits (a means of payment) is taxed at.
    case when lines.line_type = 'credit' then null else taxes.tax_code end as tax_code,
    lines.amount_unrounded,
    cast(lines.amount as {{ money_type() }}) as amount,
    cast(lines.amount_minor as bigint) as amount_minor,
    lines.corrects_invoice_id,
    lines.corrects_line_id,
    lines.instrument_id
from lines
left join {{ ref('int_invoice_taxes') }} as taxes on lines.invoice_id = taxes.invoice_id
