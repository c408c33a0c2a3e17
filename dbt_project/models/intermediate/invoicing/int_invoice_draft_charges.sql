{#-
  What an open (not yet final) invoice owes before coupons and credits: rating's lines (every
  charge, commitment, fee... of int_invoice_charge_lines) plus `adjustment` lines carrying late
  usage of earlier final invoices. An adjustment goes to the account's next open invoice in the
  same currency after the corrected period.
  Money never travels as a quantity: rating already carries what a line is measured on in
  `base_amount` (decision 78), so a document shows quantity x unit price = amount, or
  rate x base = amount, never an amount as a quantity.
-#}
with open_periods as (
    select * from {{ ref('int_invoice_open_periods') }}
),

rated as (
    select * from {{ ref('int_invoice_charge_lines') }}
    where invoice_id in (select invoice_id from open_periods)
),

adjustments as (
    select
        corrections.*,
        open_periods.invoice_id as target_invoice_id,
        open_periods.period_start as target_period_start,
        open_periods.period_end as target_period_end,
        row_number() over (
            partition by corrections.corrects_line_id order by open_periods.period_start
        ) as target_rank
    from {{ ref('int_invoice_corrections') }} as corrections
    inner join open_periods
        on corrections.account_id = open_periods.account_id
        and corrections.currency = open_periods.currency
        and open_periods.period_start > corrections.period_start
    where corrections.correction_type = 'adjustment'
)

select
    rated.invoice_line_id,
    rated.invoice_id,
    rated.line_sequence,
    rated.line_type,
    rated.account_id,
    rated.period_start,
    rated.period_end,
    rated.currency,
    rated.minor_units,
    rated.charge_id,
    rated.meter_code,
    rated.dimension_value,
    rated.pricing_model,
    rated.description,
    rated.quantity,
    rated.unit_price,
    rated.base_amount,
    rated.rate_percent,
    rated.amount_unrounded,
    rated.amount,
    rated.amount_minor,
    cast(null as {{ dbt.type_string() }}) as corrects_invoice_id,
    cast(null as {{ dbt.type_string() }}) as corrects_line_id
from rated

union all

select
    {{ dbt.concat(["target_invoice_id", "':adjustment:'", "corrects_line_id"]) }} as invoice_line_id,
    target_invoice_id as invoice_id,
    cast(null as integer) as line_sequence,
    'adjustment' as line_type,
    account_id,
    target_period_start as period_start,
    target_period_end as period_end,
    currency,
    minor_units,
    charge_id,
    meter_code,
    dimension_value,
    pricing_model,
    {{ dbt.concat(["'Late usage for invoice '", "corrects_invoice_number", "': '", "charge_description"]) }}
        as description,
    cast(null as {{ decimal_type() }}) as quantity,
    cast(null as {{ decimal_type() }}) as unit_price,
    cast(null as {{ decimal_type() }}) as base_amount,
    cast(null as {{ decimal_type() }}) as rate_percent,
    cast(correction_amount as {{ decimal_type() }}) as amount_unrounded,
    correction_amount as amount,
    {{ to_minor_units('correction_amount', 'minor_units') }} as amount_minor,
    corrects_invoice_id,
    corrects_line_id
from adjustments
where target_rank = 1
