{#-
  What every usage-based charge prices in every billed segment: the period's quantity of its
  meter, per priced dimension value. One row per segment x charge component x dimension value:
    all    the meter's total over every dimension value ('*')
    value  one dimension value (a filter, or a price of a matrix), or one whole combination of
           a multi-key meter (model=gpt-4o|region=eu)
    filter the combinations of a multi-key meter that match some keys (model=*|region=eu) and
           that no more specific component of the charge claims (int_charge_dimension_matches):
           their quantities summed (max meters: the largest); decision 81
    each   every dimension value in the period's usage that no `value` or `filter` row of the
           charge claims (group_by, or a matrix default price): one line each
  The quantity is zero when the account had no usage; usage without the dimension property
  counts only in the '*' total. Seat charges price the seats held in the period
  (int_seat_days, which carries seats over from earlier periods) and get their seat-days; their
  group_by values are those of the seats held, with or without an event in the period.
-#}
with segments as (
    select * from {{ ref('int_billing_segments') }}
    where is_billed_period
),

components as (
    select * from {{ ref('price_charges') }}
    where pricing_model != 'flat'
),

usage as (
    select * from {{ ref('int_usage_aggregated') }}
),

seat_days as (
    select * from {{ ref('int_seat_days') }}
),

listed_values as (
    select plan_code, plan_version, charge_id, dimension_value
    from components
    where dimension_match = 'value'
),

claimed as (
    select * from {{ ref('int_charge_dimension_matches') }}
),

filtered_usage as (
    select
        claimed.plan_code,
        claimed.plan_version,
        claimed.charge_id,
        claimed.component_value,
        usage.account_id,
        usage.period_start,
        case when max(usage.aggregation) = 'max' then max(usage.quantity)
            else sum(usage.quantity) end as quantity,
        sum(usage.event_count) as event_count
    from usage
    inner join claimed
        on usage.meter_code = claimed.meter_code
        and usage.dimension_value = claimed.dimension_value
    where claimed.dimension_match = 'filter'
    group by claimed.plan_code, claimed.plan_version, claimed.charge_id, claimed.component_value,
        usage.account_id, usage.period_start
),

segment_components as (
    select
        segments.billing_segment_id,
        segments.invoice_id,
        segments.account_id,
        segments.period_start,
        segments.period_end,
        segments.period_days,
        segments.base_plan_code,
        segments.plan_code,
        segments.plan_version,
        segments.currency,
        segments.segment_number,
        segments.segment_count,
        segments.segment_start,
        segments.segment_end,
        segments.days,
        segments.billable_days,
        segments.covered_days,
        components.charge_id,
        components.charge_order,
        components.dimension_value as component_value,
        components.dimension_match,
        components.meter_code,
        components.pricing_model,
        components.pricing_model = 'seat' or coalesce(components.seat_proration, 'none') = 'daily'
            as counts_seats,
        components.description
    from segments
    inner join components
        on segments.plan_code = components.plan_code
        and segments.plan_version = components.plan_version
),

priced_dimensions as (
    select
        segment_components.*,
        segment_components.component_value as dimension_value
    from segment_components
    where dimension_match in ('all', 'value', 'filter')

    union all

    select
        segment_components.*,
        found.dimension_value
    from segment_components
    inner join (
        select account_id, period_start, meter_code, dimension_value, 0 as is_seat from usage
        union all
        select account_id, period_start, meter_code, dimension_value, 1 as is_seat from seat_days
    ) as found
        on segment_components.account_id = found.account_id
        and segment_components.counts_seats = (found.is_seat = 1)
        and segment_components.period_start = found.period_start
        and segment_components.meter_code = found.meter_code
        and found.dimension_value != '*'
    left join listed_values
        on segment_components.plan_code = listed_values.plan_code
        and segment_components.plan_version = listed_values.plan_version
        and segment_components.charge_id = listed_values.charge_id
        and found.dimension_value = listed_values.dimension_value
    left join claimed
        on segment_components.plan_code = claimed.plan_code
        and segment_components.plan_version = claimed.plan_version
        and segment_components.charge_id = claimed.charge_id
        and found.dimension_value = claimed.dimension_value
    where segment_components.dimension_match = 'each'
        and listed_values.charge_id is null
        and claimed.charge_id is null
)

select
    {{ charge_line_id('priced_dimensions') }} as invoice_line_id,
    priced_dimensions.*,
    cast(
        case
            when priced_dimensions.counts_seats then coalesce(seat_days.seat_count, 0)
            when priced_dimensions.dimension_match = 'filter'
                then coalesce(filtered_usage.quantity, 0)
            else coalesce(usage.quantity, 0)
        end
    as {{ decimal_type() }}) as quantity,
    case
        when priced_dimensions.dimension_match = 'filter'
            then coalesce(filtered_usage.event_count, 0)
        else coalesce(usage.event_count, 0)
    end as event_count,
    coalesce(seat_days.seat_days, 0) as seat_days
from priced_dimensions
left join usage
    on priced_dimensions.account_id = usage.account_id
    and priced_dimensions.period_start = usage.period_start
    and priced_dimensions.meter_code = usage.meter_code
    and priced_dimensions.dimension_value = usage.dimension_value
    and priced_dimensions.dimension_match != 'filter'
left join filtered_usage
    on priced_dimensions.plan_code = filtered_usage.plan_code
    and priced_dimensions.plan_version = filtered_usage.plan_version
    and priced_dimensions.charge_id = filtered_usage.charge_id
    and priced_dimensions.component_value = filtered_usage.component_value
    and priced_dimensions.account_id = filtered_usage.account_id
    and priced_dimensions.period_start = filtered_usage.period_start
    and priced_dimensions.dimension_match = 'filter'
left join seat_days
    on priced_dimensions.account_id = seat_days.account_id
    and priced_dimensions.period_start = seat_days.period_start
    and priced_dimensions.meter_code = seat_days.meter_code
    and priced_dimensions.dimension_value = seat_days.dimension_value
