select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    cast(value as {{ decimal_type() }}) as value,
    cast(event_ts as timestamp) as event_ts,
    properties,
    cast(received_at as timestamp) as received_at,
    file_seq,
    source_line,
    source_file
from {{ committed_raw('usage_events') }} as events
