{#-
  Usage per account x meter x dimension x UTC hour for dashboards and threshold alerts: event
  count, sum and max of the values. Daily-partitioned like int_usage_daily (a day's 24 hours are
  rebuilt together).
-#}
{{ config(on_schema_change='fail', **replace_partitions_config('usage_day')) }}

with events as {{ inlined() }} (
    select * from {{ ref('int_usage_events_deduped') }}
    {% if is_incremental() %}
    where {{ usage_days_to_rebuild(ref('int_usage_events_deduped')) }}
    {% endif %}
),

by_grain as (
    select account_id, meter_code, aggregation, dimension_value, usage_hour, usage_day,
           period_start, value, file_seq
    from events
    union all
    select account_id, meter_code, aggregation, '*' as dimension_value, usage_hour, usage_day,
           period_start, value, file_seq
    from events
    where dimension_value != '*'
)

select
    account_id,
    meter_code,
    dimension_value,
    usage_hour,
    usage_day,
    period_start,
    max(aggregation) as aggregation,
    count(*) as event_count,
    cast(sum(value) as {{ decimal_type() }}) as sum_value,
    cast(max(value) as {{ decimal_type() }}) as max_value,
    max(file_seq) as max_file_seq
from by_grain
group by account_id, meter_code, dimension_value, usage_hour, usage_day, period_start
