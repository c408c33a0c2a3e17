{#-
  Usage per account x meter x dimension x UTC day, with the partial aggregates a billing period is
  assembled from (int_usage_aggregated): event count, sum, max, the last event (by event time,
  then arrival) and, for time-weighted meters, value x seconds held between snapshots of the same
  day. What a day's last snapshot holds until the next day's first one is added per period.
  Meters with a dimension get a row per dimension value and one across all values ('*').
  Daily-partitioned: an incremental run overwrites whole days (macro usage_days_to_rebuild).
-#}
{{ config(on_schema_change='fail', **replace_partitions_config('usage_day')) }}

with events as (
    select * from {{ ref('int_usage_events_deduped') }}
    {% if is_incremental() %}
    where {{ usage_days_to_rebuild(ref('int_usage_events_deduped')) }}
    {% endif %}
),

by_grain as (
    select account_id, meter_code, aggregation, dimension_value, usage_day, period_start,
           value, event_ts, file_seq, source_line
    from events
    union all
    select account_id, meter_code, aggregation, '*' as dimension_value, usage_day, period_start,
           value, event_ts, file_seq, source_line
    from events
    where dimension_value != '*'
),

{#- One ordering for both windows (one sort of the day's events): the last event by event time,
    then arrival, is the one without a next row (source_line is never null). -#}
sequenced as (
    select
        by_grain.*,
        lead(event_ts) over (
            partition by account_id, meter_code, dimension_value, usage_day
            order by event_ts, file_seq, source_line
        ) as next_event_ts,
        lead(source_line) over (
            partition by account_id, meter_code, dimension_value, usage_day
            order by event_ts, file_seq, source_line
        ) is null as is_last
    from by_grain
)

select
    account_id,
    meter_code,
    dimension_value,
    usage_day,
    period_start,
    max(aggregation) as aggregation,
    count(*) as event_count,
    cast(sum(value) as {{ decimal_type() }}) as sum_value,
    cast(max(value) as {{ decimal_type() }}) as max_value,
    min(event_ts) as first_event_ts,
    max(event_ts) as last_event_ts,
    cast(max(case when is_last then value end) as {{ decimal_type() }}) as last_value,
    max(case when is_last then file_seq end) as last_file_seq,
    max(case when is_last then source_line end) as last_source_line,
    cast(sum(
        case when aggregation = 'time_weighted_sum' and next_event_ts is not null
            then value * {{ seconds_between('event_ts', 'next_event_ts') }}
        end
    ) as {{ decimal_type() }}) as held_value_seconds,
    max(file_seq) as max_file_seq
from sequenced
group by account_id, meter_code, dimension_value, usage_day, period_start
