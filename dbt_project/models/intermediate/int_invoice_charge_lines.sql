{#- Charge lines: one per charge of the plan, rounded once, half-up to the currency's minor unit.
    This is where rating ends; fct_invoice_lines adds the lines that act on the whole invoice. -#}
with rated as (
    select * from {{ ref('fct_rated_usage') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

rounded as (
    select
        rated.*,
        currencies.minor_units,
        {{ round_money('rated.amount_unrounded', 'currencies.minor_units') }} as amount
    from rated
    inner join currencies on rated.currency = currencies.currency_code
)

select
    invoice_line_id,
    invoice_id,
    'charge' as line_type,
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
    {{ to_minor_units('amount', 'minor_units') }} as amount_minor
from rounded
