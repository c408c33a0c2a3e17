{#-
  The events of seats: accepted events of unique_count meters that name a seat (their
  unique_property value), with only what int_seat_holdings orders and groups them by. Seat
  holdings read every seat event ever landed (a seat added years ago and never removed is still
  held); reading them here rather than from int_usage_events_deduped scans about one event in
  twenty, in eight columns, not a filter over every accepted event (decision 111).
  Incremental by arrival, like int_usage_events_deduped: a run appends the seat events of the
  files landed since the last run.
-#}
{{ config(incremental_strategy='append', on_schema_change='fail') }}

select
    account_id,
    meter_code,
    dimension_value,
    unique_property_value,
    value,
    event_ts,
    file_seq,
    source_line
from {{ ref('int_usage_events_deduped') }}
where aggregation = 'unique_count'
    and unique_property_value is not null
    and {{ arrived_since_last_run() }}
