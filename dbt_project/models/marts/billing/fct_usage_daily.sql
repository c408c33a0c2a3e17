{{ config(materialized=view_or_table_for_readers()) }}
{#- Usage per account, meter, dimension and UTC day for dashboards and per-account usage exports. -#}
with unique_values as (
    select account_id, meter_code, dimension_value, usage_day,
           count(distinct unique_property_value) as unique_count
    from {{ ref('int_usage_daily_unique_values') }}
    group by account_id, meter_code, dimension_value, usage_day
)

select
    daily.account_id,
    daily.meter_code,
    daily.dimension_value,
    daily.usage_day,
    daily.period_start,
    daily.aggregation,
    daily.event_count,
    daily.sum_value,
    daily.max_value,
    daily.last_value,
    unique_values.unique_count
from {{ ref('int_usage_daily') }} as daily
left join unique_values
    on daily.account_id = unique_values.account_id
    and daily.meter_code = unique_values.meter_code
    and daily.dimension_value = unique_values.dimension_value
    and daily.usage_day = unique_values.usage_day
