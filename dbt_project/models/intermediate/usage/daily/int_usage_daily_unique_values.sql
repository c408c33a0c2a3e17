{#-
  The distinct unique_property values (e.g. user_id of seats.active) seen per account x meter x
  dimension x UTC day, for unique_count meters: a period's count is the distinct count over its
  days. Daily-partitioned like int_usage_daily.
-#}
{{ config(on_schema_change='fail', **replace_partitions_config('usage_day')) }}

with events as {{ inlined() }} (
    select * from {{ ref('int_usage_events_deduped') }}
    where aggregation = 'unique_count'
    {% if is_incremental() %}
        and ({{ usage_days_to_rebuild(ref('int_usage_events_deduped')) }})
    {% endif %}
),

by_grain as (
    select account_id, meter_code, dimension_value, usage_day, period_start,
           unique_property_value, file_seq
    from events
    union all
    select account_id, meter_code, '*' as dimension_value, usage_day, period_start,
           unique_property_value, file_seq
    from events
    where dimension_value != '*'
)

select
    account_id,
    meter_code,
    dimension_value,
    usage_day,
    period_start,
    unique_property_value,
    max(file_seq) as max_file_seq
from by_grain
where unique_property_value is not null
group by account_id, meter_code, dimension_value, usage_day, period_start, unique_property_value
