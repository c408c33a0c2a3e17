{{ config(meta={"dagster": {"ref": {"name": "fct_invoice_lines"}}}) }}
-- No prepaid credit grant or fixed coupon is drawn beyond its amount (final and draft draws).
with draws as (
    select instrument_id, sum(-amount) as drawn
    from {{ ref('fct_invoice_lines') }}
    where line_type in ('credit', 'coupon') and instrument_id is not null
    group by instrument_id
),

instruments as (
    select grant_id as instrument_id, amount from {{ ref('credit_grants') }}
    union all
    select coupon_id, amount_off from {{ ref('coupons') }} where coupon_type = 'fixed'
)

select draws.instrument_id, draws.drawn, instruments.amount
from draws
inner join instruments on draws.instrument_id = instruments.instrument_id
where draws.drawn > instruments.amount or draws.drawn < 0
