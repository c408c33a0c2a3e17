{#-
  Usage per account x meter x dimension x UTC day, with the partial aggregates a billing period is
  assembled from (int_usage_aggregated): event count, sum, max, the last event (by event time,
  then arrival) and, for time-weighted meters, value x seconds held between snapshots of the same
  day. What a day's last snapshot holds until the next day's first one is added per period.
  Meters with a dimension get a row per dimension value and one across all values ('*').
  Daily-partitioned: an incremental run overwrites whole days (macro usage_days_to_rebuild).
-#}
{{ config(on_schema_change='fail', **replace_partitions_config('usage_day')) }}

with events as {{ inlined() }} (
    select * from {{ ref('int_usage_events_deduped') }}
    {% if is_incremental() %}
    where {{ usage_days_to_rebuild(ref('int_usage_events_deduped')) }}
    {% endif %}
),

by_grain as {{ inlined() }} (
    select account_id, meter_code, aggregation, dimension_value, usage_day, period_start,
           value, event_ts, file_seq, source_line
    from events
    union all
    select account_id, meter_code, aggregation, '*' as dimension_value, usage_day, period_start,
           value, event_ts, file_seq, source_line
    from events
    where dimension_value != '*'
),

{#- Only time-weighted meters need each event's next one (what a snapshot holds until the next):
    the window sorts their events alone. The last event of a day, by event time then arrival,
    is an aggregate (last_by: no sort; the order is total, source_line is never null). Sorting
    every event for the window was most of this model's time (decision 98). -#}
held as (
    select account_id, meter_code, dimension_value, usage_day, period_start,
           sum(value * {{ seconds_between('event_ts', 'next_event_ts') }}) as held_value_seconds
    from (
        select
            by_grain.*,
            lead(event_ts) over (
                partition by account_id, meter_code, dimension_value, usage_day
                order by event_ts, file_seq, source_line
            ) as next_event_ts
        from by_grain
        where aggregation = 'time_weighted_sum'
    ) as sequenced
    where next_event_ts is not null
    group by account_id, meter_code, dimension_value, usage_day, period_start
),

{%- set arrival_order = ['event_ts', 'file_seq', 'source_line'] %}

daily as (
    select
        account_id,
        meter_code,
        dimension_value,
        usage_day,
        period_start,
        max(aggregation) as aggregation,
        count(*) as event_count,
        sum(value) as sum_value,
        max(value) as max_value,
        min(event_ts) as first_event_ts,
        max(event_ts) as last_event_ts,
        {{ last_by('value', arrival_order) }} as last_value,
        {{ last_by('file_seq', arrival_order) }} as last_file_seq,
        {{ last_by('source_line', arrival_order) }} as last_source_line,
        max(file_seq) as max_file_seq
    from by_grain
    group by account_id, meter_code, dimension_value, usage_day, period_start
)

select
    account_id,
    meter_code,
    dimension_value,
    usage_day,
    period_start,
    daily.aggregation,
    daily.event_count,
    cast(daily.sum_value as {{ decimal_type() }}) as sum_value,
    cast(daily.max_value as {{ decimal_type() }}) as max_value,
    daily.first_event_ts,
    daily.last_event_ts,
    cast(daily.last_value as {{ decimal_type() }}) as last_value,
    daily.last_file_seq,
    daily.last_source_line,
    cast(held.held_value_seconds as {{ decimal_type() }}) as held_value_seconds,
    daily.max_file_seq
from daily
left join held using (account_id, meter_code, dimension_value, usage_day, period_start)
