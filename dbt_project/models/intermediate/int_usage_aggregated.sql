{#-
  One quantity per account x meter x dimension x billing period, by the meter's aggregation:
    sum, count, max, unique_count (distinct unique_property_value), latest (value of the last event
    by event time, then arrival), time_weighted_sum (value held x hours until the next snapshot or
    the period end; before the first snapshot of a period nothing is held).
  Meters with a dimension are aggregated per dimension value AND across all values
  (dimension_value = '*'), so a plan can price per model or in total.
-#}
with events as (
    select * from {{ ref('int_usage_events_deduped') }}
),

by_grain as (
    select account_id, meter_code, aggregation, period_start, dimension_value,
           unique_property_value, value, event_ts, file_seq, source_line
    from events
    union all
    select account_id, meter_code, aggregation, period_start, '*' as dimension_value,
           unique_property_value, value, event_ts, file_seq, source_line
    from events
    where dimension_value != '*'
),

sequenced as (
    select
        by_grain.*,
        row_number() over (
            partition by account_id, meter_code, period_start, dimension_value
            order by event_ts desc, file_seq desc, source_line desc
        ) as recency_rank,
        lead(event_ts) over (
            partition by account_id, meter_code, period_start, dimension_value
            order by event_ts, file_seq, source_line
        ) as next_event_ts
    from by_grain
),

weighted as (
    select
        sequenced.*,
        case when aggregation = 'time_weighted_sum' then
            value * {{ seconds_between(
                'event_ts',
                'coalesce(next_event_ts, cast(' ~ dbt.dateadd('month', 1, 'period_start') ~ ' as timestamp))'
            ) }}
        end as value_seconds
    from sequenced
),

aggregated as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        max(aggregation) as aggregation,
        count(*) as event_count,
        sum(value) as sum_value,
        max(value) as max_value,
        count(distinct unique_property_value) as unique_count,
        max(case when recency_rank = 1 then value end) as latest_value,
        sum(value_seconds) as value_seconds
    from weighted
    group by account_id, meter_code, dimension_value, period_start
)

select
    account_id,
    meter_code,
    dimension_value,
    period_start,
    cast({{ dbt.dateadd('month', 1, 'period_start') }} as date) as period_end,
    aggregation,
    event_count,
    cast(
        case aggregation
            when 'sum' then sum_value
            when 'count' then event_count
            when 'max' then max_value
            when 'unique_count' then unique_count
            when 'latest' then latest_value
            when 'time_weighted_sum' then {{ divide_decimal('value_seconds', 3600) }}
        end
    as {{ decimal_type() }}) as quantity
from aggregated
