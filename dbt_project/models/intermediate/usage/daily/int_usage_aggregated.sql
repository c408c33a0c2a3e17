{#-
  One quantity per account x meter x dimension x billing period (the account's cycle), by the meter's
  aggregation, assembled from the daily partials of int_usage_daily:
    sum, count, max        sum of day sums, sum of day counts, max of day maxima;
    unique_count           distinct unique_property values over the period's days;
    latest                 the last day's last event (by event time, then arrival);
    time_weighted_sum      value x hours held until the next snapshot or the period end: the
                           within-day holdings plus each day's last snapshot held until the next
                           day's first (before the first snapshot of a period nothing is held).
  Meters with a dimension have a row per dimension value and one across all values ('*').
  Incremental: an affected period (a day of it was rebuilt) is recomputed whole from its days,
  which costs days x series, not events.
-#}
{{ config(on_schema_change='fail', **replace_partitions_config('period_start')) }}

with days as (
    select * from {{ ref('int_usage_daily') }}
    {% if is_incremental() %}
    where period_start in (
        select period_start from {{ ref('int_usage_daily') }}
        where {{ usage_days_to_rebuild(ref('int_usage_daily'), arrival_column='max_file_seq') }}
    )
    {% endif %}
),

unique_counts as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        count(distinct unique_property_value) as unique_count
    from {{ ref('int_usage_daily_unique_values') }}
    where period_start in (select period_start from days)
    group by account_id, meter_code, dimension_value, period_start
),

sequenced as (
    select
        days.*,
        cast({{ billing_period_end('days.period_start', 'cycles') }} as timestamp) as period_end_ts,
        lead(days.first_event_ts) over (
            partition by days.account_id, days.meter_code, days.dimension_value, days.period_start
            order by days.usage_day
        ) as next_day_first_event_ts,
        row_number() over (
            partition by days.account_id, days.meter_code, days.dimension_value, days.period_start
            order by days.last_event_ts desc, days.last_file_seq desc, days.last_source_line desc
        ) as recency_rank
    from days
    left join {{ ref('billing_cycles') }} as cycles on days.account_id = cycles.account_id
),

aggregated as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        max(aggregation) as aggregation,
        sum(event_count) as event_count,
        sum(sum_value) as sum_value,
        max(max_value) as max_value,
        max(case when recency_rank = 1 then last_value end) as latest_value,
        sum(case when aggregation = 'time_weighted_sum' then
            coalesce(held_value_seconds, 0) + last_value * {{ seconds_between(
                'last_event_ts', 'coalesce(next_day_first_event_ts, period_end_ts)') }}
        end) as value_seconds,
        max(max_file_seq) as max_file_seq
    from sequenced
    group by account_id, meter_code, dimension_value, period_start
)

select
    aggregated.account_id,
    aggregated.meter_code,
    aggregated.dimension_value,
    aggregated.period_start,
    {{ billing_period_end('aggregated.period_start', 'cycles') }} as period_end,
    aggregated.aggregation,
    aggregated.event_count,
    cast(
        case aggregated.aggregation
            when 'sum' then aggregated.sum_value
            when 'count' then aggregated.event_count
            when 'max' then aggregated.max_value
            when 'unique_count' then coalesce(unique_counts.unique_count, 0)
            when 'latest' then aggregated.latest_value
            when 'time_weighted_sum' then {{ divide_decimal('aggregated.value_seconds', 3600) }}
        end
    as {{ decimal_type() }}) as quantity,
    aggregated.max_file_seq
from aggregated
left join {{ ref('billing_cycles') }} as cycles on aggregated.account_id = cycles.account_id
left join unique_counts
    on aggregated.account_id = unique_counts.account_id
    and aggregated.meter_code = unique_counts.meter_code
    and aggregated.dimension_value = unique_counts.dimension_value
    and aggregated.period_start = unique_counts.period_start
