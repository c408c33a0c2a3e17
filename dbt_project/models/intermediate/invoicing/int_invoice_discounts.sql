{#-
  Percentage coupons on open invoices: percent_off of the invoice's gross amount (rating's lines
  plus adjustments), rounded once (round_money), capped at max_discount per invoice when set. A
  coupon applies to invoices whose billing period overlaps [valid_from, valid_to) once it exists
  (valid_from on or before the run's as_of). Fixed-amount coupons draw down like credits
  (int_invoice_draws).
-#}
with gross as (
    select
        invoice_id,
        account_id,
        currency,
        minor_units,
        period_start,
        period_end,
        sum(amount) as gross_amount
    from {{ ref('int_invoice_draft_charges') }}
    group by invoice_id, account_id, currency, minor_units, period_start, period_end
),

coupons as (
    select * from {{ ref('coupons') }}
    where coupon_type = 'percentage'
        and valid_from <= cast({{ as_of_timestamp() }} as date)
),

discounted as (
    select
        gross.*,
        coupons.coupon_id,
        coupons.description,
        coupons.percent_off,
        coupons.max_discount,
        cast(
            case when gross.gross_amount > 0 then gross.gross_amount else 0 end
            * coupons.percent_off * cast(0.01 as {{ decimal_type() }})
        as {{ decimal_type() }}) as discount_unrounded
    from gross
    inner join coupons
        on gross.account_id = coupons.account_id
        and (coupons.currency is null or coupons.currency = gross.currency)
        and coupons.valid_from < gross.period_end
        and (coupons.valid_to is null or coupons.valid_to > gross.period_start)
),

capped as (
    select
        discounted.*,
        case
            when max_discount is not null and {{ round_money('discount_unrounded', 'minor_units') }} > max_discount
                then max_discount
            else {{ round_money('discount_unrounded', 'minor_units') }}
        end as discount
    from discounted
)

select
    {{ dbt.concat(["invoice_id", "':coupon:'", "coupon_id"]) }} as invoice_line_id,
    invoice_id,
    'coupon' as line_type,
    account_id,
    period_start,
    period_end,
    currency,
    minor_units,
    description,
    percent_off,
    cast(case when gross_amount > 0 then gross_amount else 0 end as {{ decimal_type() }}) as base_amount,
    cast(percent_off as {{ decimal_type() }}) as rate_percent,
    cast(-discount_unrounded as {{ decimal_type() }}) as amount_unrounded,
    cast(-discount as {{ money_type() }}) as amount,
    {{ to_minor_units('-discount', 'minor_units') }} as amount_minor,
    coupon_id as instrument_id
from capped
