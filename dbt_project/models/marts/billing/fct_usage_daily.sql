{{ config(materialized=view_or_table_for_readers()) }}
{#-
  Usage per account, meter and UTC day, all dimension values together: one row per meter and
  day, so a sum over any rows is a total. The breakdown per dimension value (model, region) is
  fct_usage_daily_by_dimension.
-#}
with unique_values as (
    select account_id, meter_code, usage_day,
           count(distinct unique_property_value) as unique_count
    from {{ ref('int_usage_daily_unique_values') }}
    where dimension_value = '*'
    group by account_id, meter_code, usage_day
)

select
    daily.account_id,
    daily.meter_code,
    daily.usage_day,
    daily.period_start,
    daily.aggregation,
    meters.unit,
    daily.event_count,
    daily.sum_value,
    daily.max_value,
    daily.last_value,
    unique_values.unique_count
from {{ ref('int_usage_daily') }} as daily
inner join {{ ref('meters') }} as meters on daily.meter_code = meters.meter_code
left join unique_values
    on daily.account_id = unique_values.account_id
    and daily.meter_code = unique_values.meter_code
    and daily.usage_day = unique_values.usage_day
-- int_usage_daily's '*' rows are the meter's total (for meters without a dimension, its only rows).
where daily.dimension_value = '*'
