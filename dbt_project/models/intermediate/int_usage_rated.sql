{#-
  Rating at tier grain: every charge of the plan in force, for every billing period, against the
  period's quantity (zero when the account had no usage of that meter). Tier conventions:
    up_to (upper_bound) is inclusive and cumulative, null = unbounded; lower_bound is the previous
    tier's upper_bound (0 for the first tier), exclusive.
    per_unit / graduated: each unit priced in its own tier; a tier's flat fee is charged once the
      quantity enters it, the first tier's even at zero.
    volume: all units at the tier the total falls in, plus that tier's flat fee.
  Amounts stay unrounded here (10 decimal places); invoice lines round once (round_money).
-#}
with periods as (
    select * from {{ ref('int_billing_periods') }}
),

charges as (
    select * from {{ ref('price_charges') }}
),

tiers as (
    select * from {{ ref('price_tiers') }}
),

usage as (
    select * from {{ ref('int_usage_aggregated') }}
),

charge_quantities as (
    select
        periods.invoice_id,
        periods.account_id,
        periods.period_start,
        periods.period_end,
        periods.plan_code,
        periods.plan_version,
        periods.currency,
        charges.charge_id,
        charges.meter_code,
        charges.dimension_value,
        charges.pricing_model,
        charges.description,
        coalesce(usage.quantity, cast(0 as {{ decimal_type() }})) as quantity,
        coalesce(usage.event_count, 0) as event_count
    from periods
    inner join charges
        on periods.plan_code = charges.plan_code
        and periods.plan_version = charges.plan_version
    left join usage
        on periods.account_id = usage.account_id
        and periods.period_start = usage.period_start
        and charges.meter_code = usage.meter_code
        and charges.dimension_value = usage.dimension_value
),

tiered as (
    select
        charge_quantities.*,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        case
            when charge_quantities.pricing_model = 'volume' then
                (charge_quantities.quantity > tiers.lower_bound or tiers.tier_number = 1)
                and (tiers.upper_bound is null or charge_quantities.quantity <= tiers.upper_bound)
            else charge_quantities.quantity > tiers.lower_bound or tiers.tier_number = 1
        end as is_tier_reached
    from charge_quantities
    inner join tiers
        on charge_quantities.plan_code = tiers.plan_code
        and charge_quantities.plan_version = tiers.plan_version
        and charge_quantities.charge_id = tiers.charge_id
),

priced as (
    select
        tiered.*,
        cast(
            case
                when not is_tier_reached then 0
                when pricing_model = 'volume' then quantity
                when upper_bound is null or quantity < upper_bound then quantity - lower_bound
                else upper_bound - lower_bound
            end
        as {{ decimal_type() }}) as tier_quantity
    from tiered
)

select
    {{ dbt.concat(["invoice_id", "':'", "charge_id", "':'", dbt.cast("tier_number", dbt.type_string())]) }} as rated_tier_id,
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
    quantity,
    event_count,
    tier_number,
    lower_bound,
    upper_bound,
    unit_price,
    tier_quantity,
    cast(case when is_tier_reached then flat_fee else 0 end as {{ decimal_type() }}) as flat_fee_charged,
    cast(
        tier_quantity * unit_price + case when is_tier_reached then flat_fee else 0 end
    as {{ decimal_type() }}) as amount_unrounded
from priced
