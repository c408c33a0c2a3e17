{#-
  The tiered price models, rated at tier grain (one row per tier of the charge component)
  against the quantity of the whole billing period under the segment's plan version. Unrounded
  (10 places). Tiers: lower_bound exclusive, upper_bound inclusive and cumulative, null =
  unbounded; a fraction above a bound belongs to the next tier. free_units are subtracted first.
    per_unit, matrix      one unbounded tier
    graduated             each unit in its own tier; a tier's flat fee once the quantity enters
                          it, the first tier's even at zero
    volume                all units at the tier the quantity falls in, plus its flat fee
    graduated_percentage  graduated on transaction value, unit_price = rate / 100 (Lago)
    tiered_blocks         Kill Bill's tiered blocks: a tier holds max_blocks blocks of block_size
                          (upper_bound = lower_bound + max_blocks x block_size), a started block
                          costs in full (block_count = ceil(units / block_size)) at the tier's
                          unit_price; all_tiers like graduated, top_tier the whole quantity in
                          blocks of the tier it ends in (like volume)
-#}
with quantities as (
    select * from (
        {{ rated_quantities(['per_unit', 'matrix', 'graduated', 'volume', 'graduated_percentage', 'tiered_blocks']) }}
    ) as charge_quantities
    -- daily-prorated graduated charges are rated in int_usage_prorated_rated
    where coalesce(seat_proration, 'none') != 'daily'
),

tiered as (
    select
        quantities.*,
        tiers.tier_number,
        tiers.lower_bound,
        tiers.upper_bound,
        tiers.unit_price,
        tiers.flat_fee,
        tiers.block_size,
        tiers.rate_percent,
        quantities.pricing_model = 'volume'
            or (quantities.pricing_model = 'tiered_blocks' and quantities.block_policy = 'top_tier')
            as prices_whole_quantity
    from quantities
    inner join {{ ref('price_tiers') }} as tiers on {{ tiers_of_component('quantities', 'tiers') }}
),

reached as (
    select
        tiered.*,
        (billable_quantity > lower_bound or tier_number = 1)
        and (not prices_whole_quantity or upper_bound is null or billable_quantity <= upper_bound)
            as is_tier_reached
    from tiered
),

tier_amounts as (
    select
        reached.*,
        cast(
            case
                when not is_tier_reached then 0
                when prices_whole_quantity then billable_quantity
                when upper_bound is null or billable_quantity < upper_bound
                    then billable_quantity - lower_bound
                else upper_bound - lower_bound
            end
        as {{ decimal_type() }}) as tier_quantity,
        cast(case when is_tier_reached then flat_fee else 0 end as {{ decimal_type() }})
            as flat_fee_charged
    from reached
),

blocks as (
    select
        tier_amounts.*,
        case
            when pricing_model = 'tiered_blocks' then {{ ceil_divide('tier_quantity', 'block_size') }}
        end as block_count
    from tier_amounts
)

select
    {{ dbt.concat(["quantities.invoice_line_id", "':'", dbt.cast("quantities.tier_number", dbt.type_string())]) }} as rated_tier_id,
    {{ rated_quantity_columns() }},
    quantities.billable_quantity,
    quantities.tier_number,
    quantities.lower_bound,
    quantities.upper_bound,
    quantities.unit_price,
    quantities.block_size,
    quantities.rate_percent,
    quantities.tier_quantity,
    quantities.flat_fee_charged,
    quantities.block_count,
    cast(
        coalesce(quantities.block_count, quantities.tier_quantity) * quantities.unit_price
        + quantities.flat_fee_charged
    as {{ decimal_type() }}) as amount_unrounded
from blocks as quantities
