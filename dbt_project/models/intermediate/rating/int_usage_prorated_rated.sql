{#-
  Graduated charges with proration: daily on a unique_count meter (decision 59),
  Lago's prorated graduated charge on a recurring metric: the seats' adds and removals of the
  period, in time order (seats carried over first, at the period's start), move a running count
  of full units; each add is one full unit worth held days / days of the period (rounded up at
  5 decimal places, like Lago's prorated values), a removal -1 full unit worth 0. The tier of an
  add is chosen on the running full units (the n-th concurrent seat falls in the tier holding
  unit n) and its price applied to its prorated value; a removal frees a place in the lower
  tiers. Flat fees are not prorated: every tier up to the one the highest running count reached
  (the first tier's even at zero). Tier grain, unrounded, like int_usage_rated_tiers.
-#}
with quantities as (
    select * from (
        {{ rated_quantities(['graduated']) }}
    ) as charge_quantities
    where seat_proration = 'daily'
),

holdings as (
    select * from {{ ref('int_seat_holdings') }}
),

held as (
    select
        quantities.invoice_line_id,
        quantities.period_start,
        quantities.period_end,
        quantities.period_days,
        holdings.unique_property_value,
        holdings.added_at,
        holdings.removed_at,
        holdings.held_days
    from quantities
    inner join holdings
        on quantities.account_id = holdings.account_id
        and quantities.meter_code = holdings.meter_code
        and quantities.dimension_value = holdings.dimension_value
        and quantities.period_start = holdings.period_start
),

changes as (
    select
        invoice_line_id,
        unique_property_value,
        case
            when added_at < cast(period_start as timestamp) then cast(period_start as timestamp)
            else added_at
        end as changed_at,
        1 as change_order,
        1 as full_units,
        cast({{ ceil_divide('held_days * 100000', 'period_days') }}
            * cast(0.00001 as decimal(6,5)) as {{ decimal_type() }}) as prorated_units
    from held

    union all

    select
        invoice_line_id,
        unique_property_value,
        removed_at as changed_at,
        0 as change_order,
        -1 as full_units,
        cast(0 as {{ decimal_type() }}) as prorated_units
    from held
    where removed_at < cast(period_end as timestamp)
),

running as (
    select
        changes.*,
        sum(full_units) over (
            partition by invoice_line_id
            order by changed_at, change_order, unique_property_value
            rows between unbounded preceding and current row
        ) as full_count
    from changes
),

peaks as (
    select invoice_line_id, max(full_count) as peak_count
    from running
    group by invoice_line_id
),

placed as (
    select
        running.invoice_line_id,
        tiers.tier_number,
        sum(
            case
                when running.full_units <= 0 then 0
                else running.prorated_units * (
                    case
                        when tiers.upper_bound is not null and tiers.upper_bound < running.full_count
                            then tiers.upper_bound
                        else running.full_count
                    end
                    - case
                        when tiers.lower_bound > running.full_count - 1 then tiers.lower_bound
                        else running.full_count - 1
                    end
                )
            end
        ) as prorated_in_tier
    from running
    inner join quantities on running.invoice_line_id = quantities.invoice_line_id
    inner join {{ ref('price_tiers') }} as tiers on {{ tiers_of_component('quantities', 'tiers') }}
    where running.full_count > tiers.lower_bound
        and (tiers.upper_bound is null or running.full_count - 1 < tiers.upper_bound)
    group by running.invoice_line_id, tiers.tier_number
),

tiered as (
    select
        quantities.*,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        cast(coalesce(placed.prorated_in_tier, 0) as {{ decimal_type() }}) as tier_quantity,
        cast(
            case
                when tiers.tier_number = 1 or coalesce(peaks.peak_count, 0) > tiers.lower_bound
                    then tiers.flat_fee
                else 0
            end
        as {{ decimal_type() }}) as flat_fee_charged
    from quantities
    inner join {{ ref('price_tiers') }} as tiers on {{ tiers_of_component('quantities', 'tiers') }}
    left join peaks on quantities.invoice_line_id = peaks.invoice_line_id
    left join placed
        on quantities.invoice_line_id = placed.invoice_line_id
        and tiers.tier_number = placed.tier_number
)

select
    {{ dbt.concat(["quantities.invoice_line_id", "':'", dbt.cast("quantities.tier_number", dbt.type_string())]) }} as rated_tier_id,
    {{ rated_quantity_columns() }},
    quantities.billable_quantity,
    quantities.tier_number,
    quantities.lower_bound,
    quantities.upper_bound,
    quantities.unit_price,
    cast(null as {{ decimal_type() }}) as block_size,
    cast(null as {{ decimal_type() }}) as rate_percent,
    quantities.tier_quantity,
    quantities.flat_fee_charged,
    cast(null as bigint) as block_count,
    cast(quantities.tier_quantity * quantities.unit_price + quantities.flat_fee_charged
        as {{ decimal_type() }}) as amount_unrounded
from tiered as quantities
