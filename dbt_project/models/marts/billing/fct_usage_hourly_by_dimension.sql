{{ config(materialized=view_or_table_for_readers()) }}
{#-
  Usage per account, meter, dimension value and UTC hour, for meters with a dimension. Events
  without the dimension property count only in fct_usage_hourly.
-#}
select hourly.account_id, hourly.meter_code, meters.dimension_key, hourly.dimension_value,
       hourly.usage_hour, hourly.usage_day, hourly.period_start, hourly.aggregation, meters.unit,
       hourly.event_count, hourly.sum_value, hourly.max_value
from {{ ref('int_usage_hourly') }} as hourly
inner join {{ ref('meters') }} as meters on hourly.meter_code = meters.meter_code
where hourly.dimension_value != '*'
