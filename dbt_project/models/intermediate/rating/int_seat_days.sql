{#-
  Seat-days per account x unique-count meter x dimension x billing month, for seat charges
  prorated by day. A seat (a distinct unique_property value, e.g. properties.user_id) is held from
  the UTC day of its first event with a value above zero through the last day of the month; if its
  last event of the month has value 0, it is released after that day (the day still counts).
  Seats are counted per month: one held all month is one seat-month = days of the month.
-#}
with events as (
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        value,
        event_ts,
        period_start,
        file_seq,
        source_line
    from {{ ref('int_usage_events_deduped') }}
    where aggregation = 'unique_count' and unique_property_value is not null
),

by_grain as (
    select * from events
    union all
    select
        account_id,
        meter_code,
        '*' as dimension_value,
        unique_property_value,
        value,
        event_ts,
        period_start,
        file_seq,
        source_line
    from events
    where dimension_value != '*'
),

ranked as (
    select
        by_grain.*,
        cast(event_ts as date) as event_day,
        row_number() over (
            partition by account_id, meter_code, dimension_value, period_start, unique_property_value
            order by event_ts desc, file_seq desc, source_line desc
        ) as recency_rank
    from by_grain
),

seats as (
    select
        account_id,
        meter_code,
        dimension_value,
        period_start,
        unique_property_value,
        min(case when value > 0 then event_day end) as first_held_day,
        max(case when recency_rank = 1 and value = 0 then event_day end) as released_day
    from ranked
    group by account_id, meter_code, dimension_value, period_start, unique_property_value
),

held as (
    select
        seats.*,
        case
            when released_day is not null and released_day >= first_held_day
                then cast({{ dbt.dateadd('day', 1, 'released_day') }} as date)
            else cast({{ dbt.dateadd('month', 1, 'period_start') }} as date)
        end as held_until
    from seats
    where first_held_day is not null
)

select
    account_id,
    meter_code,
    dimension_value,
    period_start,
    count(*) as seat_count,
    cast(sum({{ dbt.datediff('first_held_day', 'held_until', 'day') }}) as bigint) as seat_days
from held
group by account_id, meter_code, dimension_value, period_start
