{#-
  Rating of every usage-based charge at tier grain, against the quantity of the whole billing
  period under the plan version of each segment: the tiered models (int_usage_rated_tiers, one
  row per tier; daily-prorated graduated charges in int_usage_prorated_rated) and the models
  rated in one row. Amounts stay unrounded (10 places);
  fct_rated_usage weights them by the segment's days, invoice lines round them once
  (round_money).
    package     free_units first, then ceil (rounding up, default) or floor (down) of quantity /
                package_size packages x package_price
    seat        seats held (int_seat_days) - included, x unit_price; daily: seat-days / days of
                the period, rounded up at 5 decimal places (Lago's ceil(5)), - included
    percentage  the sum of the transaction fees of int_usage_transactions_rated
    dynamic     the sum of the events' amounts (int_usage_event_amounts) x multiplier; with an
                amount_property, nothing when the period's values sum to 0 (Lago)
-#}
with quantities as (
    {{ rated_quantities(['package', 'seat', 'percentage', 'dynamic']) }}
),

transactions as (
    select
        invoice_line_id,
        count(*) as transaction_count,
        cast(sum(fee) as {{ decimal_type() }}) as fees
    from {{ ref('int_usage_transactions_rated') }}
    group by invoice_line_id
),

event_amounts as (
    select
        invoice_line_id,
        count(*) as transaction_count,
        cast(sum(amount) as {{ decimal_type() }}) as amount
    from {{ ref('int_usage_event_amounts') }}
    group by invoice_line_id
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
    inner join {{ ref('price_tiers') }} as tiers on {{ tiers_of_component('quantities', 'tiers') }}
    where quantities.pricing_model = 'seat'
),

billable_seats as (
    select
        seats.*,
        cast(
            case when seat_units > coalesce(free_units, 0)
                then seat_units - coalesce(free_units, 0) else 0 end
        as {{ decimal_type() }}) as billable_seat_units
    from seats
),

rated as (
    select {{ rated_tier_columns() }}
    from {{ ref('int_usage_rated_tiers') }}

    union all

    select {{ rated_tier_columns() }}
    from {{ ref('int_usage_prorated_rated') }}

    union all

    select
        {{ dbt.concat(["quantities.invoice_line_id", "':1'"]) }} as rated_tier_id,
        {{ rated_quantity_columns() }},
        quantities.billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        quantities.package_price as unit_price,
        quantities.package_size as block_size,
        cast(null as {{ decimal_type() }}) as rate_percent,
        cast(quantities.package_count as {{ decimal_type() }}) as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        quantities.package_count,
        cast(null as bigint) as transaction_count,
        cast(quantities.package_count * quantities.package_price as {{ decimal_type() }})
            as amount_unrounded
    from packages as quantities

    union all

    select
        {{ dbt.concat(["quantities.invoice_line_id", "':1'"]) }} as rated_tier_id,
        {{ rated_quantity_columns() }},
        quantities.billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        quantities.unit_price,
        cast(null as {{ decimal_type() }}) as block_size,
        cast(null as {{ decimal_type() }}) as rate_percent,
        quantities.billable_seat_units as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        cast(null as bigint) as package_count,
        cast(null as bigint) as transaction_count,
        cast(quantities.billable_seat_units * quantities.unit_price as {{ decimal_type() }})
            as amount_unrounded
    from billable_seats as quantities

    union all

    select
        {{ dbt.concat(["quantities.invoice_line_id", "':1'"]) }} as rated_tier_id,
        {{ rated_quantity_columns() }},
        quantities.quantity as billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(null as {{ decimal_type() }}) as block_size,
        cast(null as {{ decimal_type() }}) as rate_percent,
        quantities.quantity as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        cast(null as bigint) as package_count,
        coalesce(transactions.transaction_count, 0) as transaction_count,
        coalesce(transactions.fees, cast(0 as {{ decimal_type() }})) as amount_unrounded
    from quantities
    left join transactions on quantities.invoice_line_id = transactions.invoice_line_id
    where quantities.pricing_model = 'percentage'

    union all

    select
        {{ dbt.concat(["quantities.invoice_line_id", "':1'"]) }} as rated_tier_id,
        {{ rated_quantity_columns() }},
        quantities.quantity as billable_quantity,
        1 as tier_number,
        cast(null as {{ decimal_type() }}) as lower_bound,
        cast(null as {{ decimal_type() }}) as upper_bound,
        quantities.multiplier as unit_price,
        cast(null as {{ decimal_type() }}) as block_size,
        cast(null as {{ decimal_type() }}) as rate_percent,
        coalesce(event_amounts.amount, cast(0 as {{ decimal_type() }})) as tier_quantity,
        cast(0 as {{ decimal_type() }}) as flat_fee_charged,
        cast(null as bigint) as package_count,
        coalesce(event_amounts.transaction_count, 0) as transaction_count,
        cast(
            case
                when quantities.amount_property is not null and quantities.quantity = 0 then 0
                else coalesce(event_amounts.amount, 0) * quantities.multiplier
            end
        as {{ decimal_type() }}) as amount_unrounded
    from quantities
    left join event_amounts on quantities.invoice_line_id = event_amounts.invoice_line_id
    where quantities.pricing_model = 'dynamic'
)

select * from rated
