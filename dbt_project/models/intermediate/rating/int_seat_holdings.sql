{#-
  Every holding of a seat (from its add to its removal) within every billed period, for seat
  charges (int_seat_days sums them) and daily-prorated charges (int_usage_prorated_rated).
  A seat (a distinct unique_property value, e.g. properties.user_id) is added by an event with a
  value above zero and removed by one with value 0; an add while held and a removal while not
  held change nothing. A seat stays held across periods until it is removed: it is billed in
  every later period without a new event (Lago's recurring unique count).
  Each UTC calendar day on which the seat was held at any moment counts as a whole day: the
  day of the add and the day of the removal both count, a removal and a re-add on the same day
  leave no gap, and a day is never counted twice. Only subscribed days count (the period's
  segments), so a seat held before the subscription starts is billed from its first day.
    added_at    when the holding began (an add event, possibly in an earlier period)
    removed_at  when it ended (the removal event), null while held
    held_days   its held, subscribed days in the period (days shared with the previous holding
                of the seat are counted there)
  All history is read (int_seat_events, the seat events alone): a seat added years ago and never
  removed is still held.
-#}
with events as {{ inlined() }} (
    select * from {{ ref('int_seat_events') }}
),

{#- Every seat at each grain: its dimension value, and '*' (all its dimension values together,
    counted once), with its first event and whether any event removed it. Each dimension value's
    events are aggregated first and '*' is made from those few rows: the events are not copied
    under '*' and grouped again (decision 131). -#}
seats_by_dimension as (
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        min(event_ts) as first_event_ts,
        max(case when value = 0 then 1 else 0 end) as ever_removed
    from events
    group by account_id, meter_code, dimension_value, unique_property_value
),

seats as (
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        min(first_event_ts) as first_event_ts,
        max(ever_removed) as ever_removed
    from (
        select * from seats_by_dimension
        union all
        select
            account_id,
            meter_code,
            '*' as dimension_value,
            unique_property_value,
            first_event_ts,
            ever_removed
        from seats_by_dimension
        where dimension_value != '*'
    ) as grains
    group by account_id, meter_code, dimension_value, unique_property_value
),

{#- Only the events of a seat that was ever removed need to be put in order. A seat never
    removed is held from its first event on, whatever follows: each later event re-adds a held
    seat, which changes nothing (the second branch of `holdings`). Seats are mostly never
    removed, and ordering every event was most of this model's time (decision 105). -#}
removed_seats as (
    select account_id, meter_code, dimension_value, unique_property_value
    from seats
    where ever_removed = 1
),

{#- The events of removed seats at each grain: at their own dimension value, and under '*' every
    event of the seat, whatever its dimension value. -#}
removed_seat_events as (
    select
        events.account_id,
        events.meter_code,
        removed_seats.dimension_value,
        events.unique_property_value,
        events.value,
        events.event_ts,
        events.file_seq,
        events.source_line
    from events
    inner join removed_seats
        on events.account_id = removed_seats.account_id
        and events.meter_code = removed_seats.meter_code
        and events.unique_property_value = removed_seats.unique_property_value
        and (
            events.dimension_value = removed_seats.dimension_value
            or removed_seats.dimension_value = '*'
        )
),

states as (
    select
        removed_seat_events.*,
        value > 0 as is_held,
        lag(value > 0) over (
            partition by account_id, meter_code, dimension_value, unique_property_value
            order by event_ts, file_seq, source_line
        ) as was_held
    from removed_seat_events
),

changes as (
    select
        states.*,
        lead(event_ts) over (
            partition by account_id, meter_code, dimension_value, unique_property_value
            order by event_ts, file_seq, source_line
        ) as next_change_ts
    from states
    where is_held != coalesce(was_held, false)
),

holdings as (
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        event_ts as added_at,
        next_change_ts as removed_at,
        cast(event_ts as date) as added_on,
        cast(next_change_ts as date) as removed_on,
        lag(cast(next_change_ts as date)) over (
            partition by account_id, meter_code, dimension_value, unique_property_value
            order by event_ts, file_seq, source_line
        ) as previous_removed_on
    from changes
    where is_held
    union all
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        first_event_ts as added_at,
        cast(null as timestamp) as removed_at,
        cast(first_event_ts as date) as added_on,
        cast(null as date) as removed_on,
        cast(null as date) as previous_removed_on
    from seats
    where ever_removed = 0
),

{#- Half-open runs of held days, disjoint per seat: a holding that starts on the day the
    previous one was removed starts the next day (that day is already counted). -#}
held_days as (
    select
        account_id,
        meter_code,
        dimension_value,
        unique_property_value,
        added_at,
        removed_at,
        case
            when added_on = previous_removed_on
                then cast({{ dbt.dateadd('day', 1, 'added_on') }} as date)
            else added_on
        end as held_from,
        case
            when removed_on is not null
                then cast({{ dbt.dateadd('day', 1, 'removed_on') }} as date)
        end as held_until
    from holdings
),

segments as (
    select account_id, period_start, segment_start, segment_end
    from {{ ref('int_billing_segments') }}
    where is_billed_period
),

held_segment_days as (
    select
        held_days.account_id,
        held_days.meter_code,
        held_days.dimension_value,
        held_days.unique_property_value,
        held_days.added_at,
        held_days.removed_at,
        segments.period_start,
        {{ dbt.datediff(
            'greatest(held_days.held_from, segments.segment_start)',
            'least(coalesce(held_days.held_until, segments.segment_end), segments.segment_end)',
            'day') }} as days
    from held_days
    inner join segments
        on held_days.account_id = segments.account_id
        and held_days.held_from < segments.segment_end
        and (held_days.held_until is null or held_days.held_until > segments.segment_start)
)

select
    account_id,
    meter_code,
    dimension_value,
    unique_property_value,
    period_start,
    added_at,
    removed_at,
    cast(sum(days) as bigint) as held_days
from held_segment_days
group by account_id, meter_code, dimension_value, unique_property_value, period_start, added_at,
    removed_at
having sum(days) > 0
