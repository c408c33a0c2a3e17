{#-
  Pay-in-advance charges (pay_in_advance: per_unit, graduated, package on sum or count meters),
  rated event by event (decision 58): in event-time order (then arrival) within the billing
  period, each event adds its units (its value; 1 for a count meter) to the period's quantity
  and pays cost(quantity after it) - cost(quantity before it), where cost is the charge's price
  on a quantity (free units first). cost(0) is 0: the first event pays the first tier's flat fee
  (Lago: "delta = cost(1 unit) - cost(0 units), the flat fee excluded from cost(0)"). Each event
  bills under the plan version of the segment it happened in. Unrounded; each becomes an
  `instant` line of the period's invoice, in place of the charge's period line.
-#}
with matched as (
    {{ events_of_charges(['per_unit', 'graduated', 'package'], [
        'free_units', 'package_size', 'package_price', 'package_rounding', 'pay_in_advance',
    ]) }}
),

events as (
    select
        matched.*,
        cast(case when aggregation = 'count' then 1 else value end as {{ decimal_type() }}) as units
    from matched
    where pay_in_advance
        and event_ts >= cast(segment_start as timestamp)
        and event_ts < cast(segment_end as timestamp)
),

cumulated as (
    select
        events.*,
        cast(sum(units) over (
            partition by invoice_id, charge_id, dimension_value
            order by event_ts, file_seq, source_line
            rows between unbounded preceding and current row
        ) as {{ decimal_type() }}) as quantity_after,
        row_number() over (
            partition by invoice_id, charge_id, dimension_value
            order by event_ts, file_seq, source_line
        ) as event_number
    from events
),

billable as (
    select
        cumulated.*,
        cast(quantity_after - units as {{ decimal_type() }}) as quantity_before,
        cast(case when quantity_after - units > coalesce(free_units, 0)
            then quantity_after - units - coalesce(free_units, 0) else 0 end
        as {{ decimal_type() }}) as billable_before,
        cast(case when quantity_after > coalesce(free_units, 0)
            then quantity_after - coalesce(free_units, 0) else 0 end
        as {{ decimal_type() }}) as billable_after
    from cumulated
),

tier_costs as (
    select
        billable.raw_event_key,
        billable.billing_segment_id,
        billable.charge_id,
        billable.dimension_value,
        sum(
            tiers.unit_price * (
                case
                    when billable.billable_after <= tiers.lower_bound then 0
                    when tiers.upper_bound is null or billable.billable_after < tiers.upper_bound
                        then billable.billable_after - tiers.lower_bound
                    else tiers.upper_bound - tiers.lower_bound
                end
                - case
                    when billable.billable_before <= tiers.lower_bound then 0
                    when tiers.upper_bound is null or billable.billable_before < tiers.upper_bound
                        then billable.billable_before - tiers.lower_bound
                    else tiers.upper_bound - tiers.lower_bound
                end
            )
            + case
                when billable.billable_after > tiers.lower_bound
                    and not billable.billable_before > tiers.lower_bound
                    then tiers.flat_fee
                else 0
            end
        ) as amount
    from billable
    inner join {{ ref('price_tiers') }} as tiers on {{ tiers_of_component('billable', 'tiers') }}
    where billable.pricing_model in ('per_unit', 'graduated')
    group by billable.raw_event_key, billable.billing_segment_id, billable.charge_id,
        billable.dimension_value
),

package_costs as (
    select
        raw_event_key,
        billing_segment_id,
        charge_id,
        dimension_value,
        case
            when package_rounding = 'down' then
                ({{ floor_divide('billable_after', 'package_size') }}
                    - {{ floor_divide('billable_before', 'package_size') }}) * package_price
            else
                ({{ ceil_divide('billable_after', 'package_size') }}
                    - {{ ceil_divide('billable_before', 'package_size') }}) * package_price
        end as amount
    from billable
    where pricing_model = 'package'
),

costs as (
    select * from tier_costs
    union all
    select * from package_costs
)

select
    {{ dbt.concat([charge_line_id('billable'), "'#'", "billable.raw_event_key"]) }} as invoice_line_id,
    {{ charge_line_id('billable') }} as charge_line_id,
    billable.invoice_id,
    billable.billing_segment_id,
    billable.account_id,
    billable.period_start,
    billable.segment_number,
    billable.segment_count,
    billable.segment_start,
    billable.segment_end,
    billable.base_plan_code as plan_code,
    billable.plan_code as price_plan_code,
    billable.plan_version,
    billable.charge_id,
    billable.charge_order,
    billable.meter_code,
    billable.dimension_value,
    billable.pricing_model,
    billable.description,
    billable.raw_event_key,
    billable.event_ts,
    billable.event_number,
    billable.units,
    billable.quantity_before,
    billable.quantity_after,
    cast(costs.amount as {{ decimal_type() }}) as amount_unrounded
from billable
inner join costs
    on billable.raw_event_key = costs.raw_event_key
    and billable.billing_segment_id = costs.billing_segment_id
    and billable.charge_id = costs.charge_id
    and billable.dimension_value = costs.dimension_value
