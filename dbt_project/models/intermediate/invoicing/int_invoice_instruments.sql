{#-
  Everything that draws a balance down against invoices, in the order it is drawn: fixed-amount
  coupons first (a discount, its remainder carried to later invoices), then prepaid credit grants
  by priority (lower number first), then oldest (granted_on), then id. `available` is what is left
  after the draws booked on final invoices. An instrument applies to an invoice of its account
  and currency whose billing period overlaps its validity [granted_on, expires_on), once it exists
  (granted_on on or before the run's as_of); a grant with a meter_code only pays that meter's
  charges, one with a fee_type only fees of that type (fee_type_of).
-#}
with grants as (
    select
        grant_id as instrument_id,
        'credit' as instrument_type,
        account_id,
        currency,
        amount as granted_amount,
        priority,
        granted_on,
        expires_on,
        meter_code,
        fee_type,
        description,
        2 as type_order
    from {{ ref('credit_grants') }}
),

fixed_coupons as (
    select
        coupon_id as instrument_id,
        'coupon' as instrument_type,
        account_id,
        currency,
        amount_off as granted_amount,
        cast(0 as integer) as priority,
        valid_from as granted_on,
        valid_to as expires_on,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        cast(null as {{ dbt.type_string() }}) as fee_type,
        description,
        1 as type_order
    from {{ ref('coupons') }}
    where coupon_type = 'fixed'
),

instruments as (
    select * from fixed_coupons
    union all
    select * from grants
),

booked_draws as (
    select instrument_id, sum(-amount) as drawn
    from {{ ledger_lines() }}
    where document_type = 'invoice' and instrument_id is not null
    group by instrument_id
)

select
    instruments.instrument_id,
    instruments.instrument_type,
    instruments.account_id,
    instruments.currency,
    instruments.granted_amount,
    instruments.priority,
    instruments.granted_on,
    instruments.expires_on,
    instruments.meter_code,
    instruments.fee_type,
    instruments.description,
    cast(coalesce(booked_draws.drawn, 0) as {{ money_type() }}) as drawn_on_final_invoices,
    cast(instruments.granted_amount - coalesce(booked_draws.drawn, 0) as {{ money_type() }}) as available,
    row_number() over (
        partition by instruments.account_id
        order by instruments.type_order, instruments.priority, instruments.granted_on,
            instruments.instrument_id
    ) as instrument_rank
from instruments
left join booked_draws on instruments.instrument_id = booked_draws.instrument_id
where instruments.granted_on <= cast({{ as_of_timestamp() }} as date)
