{#-
  Rated usage per invoice line: one row per usage-based charge (and dimension value, and plan
  version segment) of every billed period, before rounding. amount_full_period is the charge on
  the period's whole quantity under the segment's version; amount_unrounded weights it by the
  segment's share of the subscribed days (days / covered_days), so a mid-period version change
  prorates by days and a single version keeps the full amount. Analysts start here.
-#}
with tiers as (
    select * from {{ ref('int_usage_rated') }}
),

lines as (
    select
        invoice_line_id,
        billing_segment_id,
        invoice_id,
        account_id,
        period_start,
        period_end,
        base_plan_code as plan_code,
        plan_code as price_plan_code,
        plan_version,
        currency,
        segment_number,
        segment_count,
        segment_start,
        segment_end,
        days,
        covered_days,
        charge_id,
        charge_order,
        dimension_match,
        dimension_value,
        meter_code,
        pricing_model,
        description,
        max(quantity) as quantity,
        max(billable_quantity) as billable_quantity,
        max(event_count) as event_count,
        max(seat_days) as seat_days,
        sum(package_count) as package_count,
        max(transaction_count) as transaction_count,
        count(*) as tier_count,
        sum(case when tier_quantity > 0 or flat_fee_charged > 0 then 1 else 0 end) as tiers_used,
        max(case when pricing_model = 'volume' and tier_quantity > 0 then unit_price end)
            as volume_unit_price,
        max(case when pricing_model in ('per_unit', 'matrix', 'seat') then unit_price end)
            as single_unit_price,
        cast(sum(amount_unrounded) as {{ decimal_type() }}) as amount_full_period
    from tiers
    group by
        invoice_line_id, billing_segment_id, invoice_id, account_id, period_start, period_end,
        base_plan_code, plan_code, plan_version, currency, segment_number, segment_count,
        segment_start, segment_end, days, covered_days, charge_id, charge_order,
        dimension_match, dimension_value, meter_code, pricing_model, description
)

select
    invoice_line_id,
    billing_segment_id,
    invoice_id,
    account_id,
    period_start,
    period_end,
    plan_code,
    price_plan_code,
    plan_version,
    currency,
    segment_number,
    segment_count,
    segment_start,
    segment_end,
    days,
    covered_days,
    charge_id,
    charge_order,
    dimension_match,
    dimension_value,
    meter_code,
    pricing_model,
    description,
    quantity,
    billable_quantity,
    event_count,
    seat_days,
    package_count,
    transaction_count,
    tier_count,
    tiers_used,
    coalesce(single_unit_price, volume_unit_price) as unit_price,
    amount_full_period,
    case
        when days = covered_days then amount_full_period
        else {{ prorate_by_days('amount_full_period', 'days', 'covered_days') }}
    end as amount_unrounded
from lines
