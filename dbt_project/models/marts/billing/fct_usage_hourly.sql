{{ config(materialized=view_or_table_for_readers()) }}
{#-
  Usage per account, meter and UTC hour, all dimension values together (one row per meter and
  hour: sums over rows are totals). Per dimension value: fct_usage_hourly_by_dimension.
-#}
select hourly.account_id, hourly.meter_code, hourly.usage_hour, hourly.usage_day,
       hourly.period_start, hourly.aggregation, meters.unit, hourly.event_count,
       hourly.sum_value, hourly.max_value
from {{ ref('int_usage_hourly') }} as hourly
inner join {{ ref('meters') }} as meters on hourly.meter_code = meters.meter_code
where hourly.dimension_value = '*'
