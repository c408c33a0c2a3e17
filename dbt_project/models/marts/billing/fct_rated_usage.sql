{#- Rated usage per invoice and charge: the quantity, its tiers summed, unrounded. -#}
select
    {{ dbt.concat(["invoice_id", "':'", "charge_id"]) }} as invoice_line_id,
    invoice_id,
    account_id,
    period_start,
    period_end,
    plan_code,
    plan_version,
    currency,
    charge_id,
    meter_code,
    dimension_value,
    pricing_model,
    description,
    max(quantity) as quantity,
    max(event_count) as event_count,
    count(*) as tier_count,
    case when count(*) = 1 then max(unit_price) end as unit_price,
    sum(case when tier_quantity > 0 or flat_fee_charged > 0 then 1 else 0 end) as tiers_used,
    cast(sum(amount_unrounded) as {{ decimal_type() }}) as amount_unrounded
from {{ ref('int_usage_rated') }}
group by
    invoice_id, account_id, period_start, period_end, plan_code, plan_version, currency,
    charge_id, meter_code, dimension_value, pricing_model, description
