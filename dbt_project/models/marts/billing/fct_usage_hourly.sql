{{ config(materialized=view_or_table_for_readers()) }}
{#- Usage per account, meter, dimension and UTC hour for dashboards. -#}
select account_id, meter_code, dimension_value, usage_hour, usage_day, period_start, aggregation,
       event_count, sum_value, max_value
from {{ ref('int_usage_hourly') }}
