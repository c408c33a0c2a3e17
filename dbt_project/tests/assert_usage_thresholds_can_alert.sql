{{ config(severity="warn", meta={"dagster": {"ref": {"name": "usage_thresholds"}}}) }}
-- A threshold on a meter whose period quantity is not known hour by hour (unique_count, latest,
-- time_weighted_sum) never alerts (fct_usage_alerts): each such row of seeds/usage_thresholds.csv
-- is listed here, as a warning, so that it is not silently ignored. A quota
-- (seeds/usage_quotas.csv) measures every aggregation.
select
    thresholds.threshold_id,
    thresholds.account_id,
    thresholds.meter_code,
    meters.aggregation
from {{ ref('usage_thresholds') }} as thresholds
inner join {{ ref('meters') }} as meters on thresholds.meter_code = meters.meter_code
where meters.aggregation not in {{ alertable_aggregations() }}
