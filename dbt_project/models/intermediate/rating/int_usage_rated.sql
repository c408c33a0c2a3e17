{#-
  Rating of every usage-based charge at tier grain (one row per tier; package, percentage and
  seat charges have one row), against the quantity of the whole billing period under the plan
  version of each segment. Amounts stay unrounded (10 places); fct_rated_usage weights them by
  the segment's days, invoice lines round them once (round_money).
    free_units         subtracted from the quantity first (per_unit, graduated, volume, package)
    per_unit, matrix   one unbounded tier
    graduated          each unit in its own tier; a tier's flat fee once the quantity enters it,
                       the first tier's even at zero
    volume             all units at the tier the quantity falls in, plus that tier's flat fee
    tiers              up_to (upper_bound) inclusive and cumulative, null = unbounded; fractions
                       above a bound belong to the next tier
    package            ceil (rounding up, default) or floor (down) of quantity / package_size
                       packages x package_price
    percentage         the sum of the transaction fees of int_usage_transactions_rated
    seat               seats held (int_seat_days) - included, x unit_price; daily: seat-days /
                       days of the period, rounded up at 5 decimal places (Lago's ceil(5)),
                       - included, x unit_price
-#}
{%- set columns -%}
    quantities.invoice_line_id,
    quantities.billing_segment_id,
    quantities.invoice_id,
    quantities.account_id,
    quantities.period_start,
    quantities.period_end,
    quantities.period_days,
    quantities.base_plan_code,
    quantities.plan_code,
    quantities.plan_version,
    quantities.currency,
    quantities.segment_number,
    quantities.segment_count,
    quantities.segment_start,
    quantities.segment_end,
    quantities.days,
    quantities.billable_days,
    quantities.covered_days,
    quantities.charge_id,
    quantities.charge_order,
    quantities.dimension_match,
    quantities.dimension_value,
    quantities.meter_code,
    quantities.pricing_model,
    quantities.description,
    quantities.quantity,
    quantities.event_count,
    quantities.seat_days
{%- endset -%}

with quantities as (
    select
        charge_quantities.*,
        charges.free_units,
        charges.package_size,
        charges.package_price,
        charges.package_rounding,
        charges.seat_proration,
        cast(
            case when charge_quantities.quantity > coalesce(charges.free_units, 0)
                then charge_quantities.quantity - coalesce(charges.free_units, 0) else 0 end
        as {{ decimal_type() }}) as billable_quantity
    from {{ ref('int_charge_quantities') }} as charge_quantities
    inner join {{ ref('price_charges') }} as charges
        on charge_quantities.plan_code = charges.plan_code
        and charge_quantities.plan_version = charges.plan_version
        and charge_quantities.charge_id = charges.charge_id
        and charge_quantities.component_value = charges.dimension_value
),

tiers as (
    select * from {{ ref('price_tiers') }}
),

transactions as (
    select
        invoice_line_id,
        count(*) as transaction_count,
        cast(sum(fee) as {{ decimal_type() }}) as fees
    from {{ ref('int_usage_transactions_rated') }}
    group by invoice_line_id
),

tiered as (
    select
        quantities.*,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        case
            when quantities.pricing_model = 'volume' then
                (quantities.billable_quantity > tiers.lower_bound or tiers.tier_number = 1)
                and (tiers.upper_bound is null or quantities.billable_quantity <= tiers.upper_bound)
            else quantities.billable_quantity > tiers.lower_bound or tiers.tier_number = 1
        end as is_tier_reached
    from quantities
    inner join tiers
        on quantities.plan_code = tiers.plan_code
        and quantities.plan_version = tiers.plan_version
        and quantities.charge_id = tiers.charge_id
        and quantities.component_value = tiers.dimension_value
    where quantities.pricing_model in ('per_unit', 'matrix', 'graduated', 'volume')
),

tier_amounts as (
    select
        tiered.*,
        cast(
            case
                when not is_tier_reached then 0
                when pricing_model = 'volume' then billable_quantity
                when upper_bound is null or billable_quantity < upper_bound
                    then billable_quantity - lower_bound
                else upper_bound - lower_bound
            end
        as {{ decimal_type() }}) as tier_quantity,
        cast(case when is_tier_reached then flat_fee else 0 end as {{ decimal_type() }})
            as flat_fee_charged
    from tiered
),

packages as (
    select
        quantities.*,
        case
            when quantities.package_rounding = 'down'
                then {{ floor_divide('quantities.billable_quantity', 'quantities.package_size') }}
            else {{ ceil_divide('quantities.billable_quantity', 'quantities.package_size') }}
        end as package_count
    from quantities
    where quantities.pricing_model = 'package'
),

seats as (
    select
        quantities.*,
        tiers.unit_price,
        case
            when quantities.seat_proration = 'daily'
                then cast({{ ceil_divide('quantities.seat_days * 100000', 'quantities.period_days') }}
                    * cast(0.00001 as decimal(6,5)) as {{ decimal_type() }})
            else quantities.quantity
        end as seat_units
    from quantities
    inner join tiers
        on quantities.plan_code = tiers.plan_code
        and quantities.plan_version = tiers.plan_version
        and quantities.charge_id = tiers.charge_id
        and quantities.component_value = tiers.dimension_value
    where quantities.pricing_model = 'seat'
),

rated as (
    select
        {{ columns }},
        quantities.billable_quantity,
        quantities.tier_number,
        quantities.lower_bound,
        quantities.upper_bound,
        quantities.unit_price,
        quantities.tier_quantity,
        quantities.flat_fee_charged,
        cast(null as bigint) as package_count,
        cast(null as bigint) as transaction_count,
        cast(
            quantities.tier_quantity * quantities.unit_price + quantities.flat_fee_charged
        as {{ decimal_type() }}) as amount_unrounded
    from tier_amounts as quantities

    union all

    select
        {{ columns }},
        quantities.billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        quantities.package_price as unit_price,
        cast(quantities.package_count as {{ decimal_type() }}) as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        quantities.package_count,
        cast(null as bigint) as transaction_count,
        cast(quantities.package_count * quantities.package_price as {{ decimal_type() }})
            as amount_unrounded
    from packages as quantities

    union all

    select
        {{ columns }},
        quantities.billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        quantities.unit_price,
        cast(
            case when quantities.seat_units > coalesce(quantities.free_units, 0)
                then quantities.seat_units - coalesce(quantities.free_units, 0) else 0 end
        as {{ decimal_type() }}) as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        cast(null as bigint) as package_count,
        cast(null as bigint) as transaction_count,
        cast(
            case when quantities.seat_units > coalesce(quantities.free_units, 0)
                then quantities.seat_units - coalesce(quantities.free_units, 0) else 0 end
            * quantities.unit_price
        as {{ decimal_type() }}) as amount_unrounded
    from seats as quantities

    union all

    select
        {{ columns }},
        quantities.quantity as billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        cast(null as {{ decimal_type() }}) as unit_price,
        quantities.quantity as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        cast(null as bigint) as package_count,
        coalesce(transactions.transaction_count, 0) as transaction_count,
        coalesce(transactions.fees, cast(0 as {{ decimal_type() }})) as amount_unrounded
    from quantities
    left join transactions on quantities.invoice_line_id = transactions.invoice_line_id
    where quantities.pricing_model = 'percentage'
)

select
    {{ dbt.concat(["invoice_line_id", "':'", dbt.cast("tier_number", dbt.type_string())]) }} as rated_tier_id,
    rated.*
from rated
