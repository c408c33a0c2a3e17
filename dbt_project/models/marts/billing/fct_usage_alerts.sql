{#-
  One alert per threshold and billing period, the first time the period's usage reaches
  alert_percent of limit_quantity (usage_thresholds seed; e.g. 85 % of 300,000 api.requests).
  crossed_hour is the UTC hour whose usage crossed it. Usage is the period to date, across
  dimension values, from int_usage_hourly: cumulative for sum meters (values) and count meters
  (events), the running maximum for max meters. Thresholds on unique_count, latest and
  time_weighted_sum meters never alert (their period quantity is not known hour by hour);
  assert_usage_thresholds_can_alert warns about them. The alert is a fact about the data:
  recomputing never repeats it, and its id keys the webhook.
-#}
with thresholds as (
    select
        thresholds.*,
        meters.aggregation,
        cast(thresholds.limit_quantity * thresholds.alert_percent * cast(0.01 as {{ decimal_type() }})
            as {{ decimal_type() }}) as alert_quantity
    from {{ ref('usage_thresholds') }} as thresholds
    inner join {{ ref('meters') }} as meters on thresholds.meter_code = meters.meter_code
    where meters.aggregation in {{ alertable_aggregations() }}
),

hourly as (
    select
        hourly.account_id,
        hourly.meter_code,
        hourly.period_start,
        hourly.usage_hour,
        hourly.aggregation,
        case hourly.aggregation
            when 'count' then cast(hourly.event_count as {{ decimal_type() }})
            when 'max' then hourly.max_value
            else hourly.sum_value
        end as usage_quantity
    from {{ ref('int_usage_hourly') }} as hourly
    where hourly.dimension_value = '*'
),

cumulative as (
    select
        hourly.*,
        case when aggregation = 'max' then
            max(usage_quantity) over (
                partition by account_id, meter_code, period_start order by usage_hour
                rows between unbounded preceding and current row
            )
        else
            sum(usage_quantity) over (
                partition by account_id, meter_code, period_start order by usage_hour
                rows between unbounded preceding and current row
            )
        end as period_usage
    from hourly
),

crossings as (
    select
        thresholds.threshold_id,
        thresholds.account_id,
        thresholds.meter_code,
        thresholds.limit_quantity,
        thresholds.alert_percent,
        thresholds.alert_quantity,
        cumulative.period_start,
        cumulative.usage_hour,
        cumulative.period_usage,
        row_number() over (
            partition by thresholds.threshold_id, cumulative.period_start
            order by cumulative.usage_hour
        ) as crossing_rank
    from thresholds
    inner join cumulative
        on thresholds.account_id = cumulative.account_id
        and thresholds.meter_code = cumulative.meter_code
        and cumulative.period_usage >= thresholds.alert_quantity
)

select
    {{ dbt.concat(["threshold_id", "':'", dbt.cast("period_start", dbt.type_string())]) }} as alert_id,
    threshold_id,
    account_id,
    meter_code,
    period_start,
    limit_quantity,
    alert_percent,
    alert_quantity,
    usage_hour as crossed_hour,
    cast(period_usage as {{ decimal_type() }}) as usage_at_crossing
from crossings
where crossing_rank = 1
