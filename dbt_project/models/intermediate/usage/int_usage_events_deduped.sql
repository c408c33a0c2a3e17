{#-
  Accepted events only, with the meter's billing dimension (its one key's value, or for a meter
  with several keys the combination model=gpt-4o|region=eu; decision 81), the UTC day and hour they happened in
  and the billing period they bill in (the account's billing cycle: a UTC calendar month unless
  seeds/billing_cycles.csv says otherwise). Incremental by arrival: accepted events never change, so a run
  appends the accepted events of the files landed since the last run, whatever their event day.
-#}
{#- Append, no unique_key: a run only adds rows of files no run has seen (raw_event_key carries
    the file's hash), so a delete+insert by key would find nothing and scan all history to find
    it. unique_by_arrival on fct_usage_event_outcomes and int_usage_events_deduped proves it;
    the post_hook keeps the ids' range per file, which that test's lookup reads (decision 119). -#}
{{ config(
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=record_arrival_watermark_hooks(),
    post_hook=["{{ record_arrival_id_ranges('unique_id') }}"],
) }}

with accepted as (
    select * from {{ ref('int_usage_events_classified') }}
    where outcome = 'accepted' and {{ arrived_since_last_run() }}
),

meters as (
    select * from {{ ref('meters') }}
)

select
    accepted.raw_event_key,
    accepted.unique_id,
    accepted.unique_id_hash,
    accepted.account_id,
    accepted.meter_code,
    meters.aggregation,
    {{ event_dimension_value('accepted.properties', 'meters.dimension_key') }} as dimension_value,
    {{ json_field('accepted.properties', 'meters.unique_property') }} as unique_property_value,
    accepted.value,
    accepted.event_ts,
    cast({{ dbt.date_trunc('day', 'accepted.event_ts') }} as date) as usage_day,
    cast({{ dbt.date_trunc('hour', 'accepted.event_ts') }} as timestamp) as usage_hour,
    {{ billing_period_start('accepted.event_ts', 'cycles') }} as period_start,
    accepted.file_seq,
    accepted.source_line
from accepted
inner join meters on accepted.meter_code = meters.meter_code
left join {{ ref('billing_cycles') }} as cycles on accepted.account_id = cycles.account_id
