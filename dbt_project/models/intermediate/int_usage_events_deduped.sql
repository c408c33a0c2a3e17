{#- Accepted events only, with the meter's billing dimension and the UTC month they bill in. -#}
with accepted as (
    select * from {{ ref('int_usage_events_classified') }}
    where outcome = 'accepted'
),

meters as (
    select * from {{ ref('meters') }}
)

select
    accepted.raw_event_key,
    accepted.unique_id,
    accepted.account_id,
    accepted.meter_code,
    meters.aggregation,
    coalesce({{ json_field('accepted.properties', 'meters.dimension_key') }}, '*') as dimension_value,
    {{ json_field('accepted.properties', 'meters.unique_property') }} as unique_property_value,
    accepted.value,
    accepted.event_ts,
    {{ month_start('accepted.event_ts') }} as period_start,
    accepted.file_seq,
    accepted.source_line
from accepted
inner join meters on accepted.meter_code = meters.meter_code
