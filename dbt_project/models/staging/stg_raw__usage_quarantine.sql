select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    value_text,
    ts_text,
    raw_text,
    reason,
    cast(received_at as timestamp) as received_at,
    file_seq,
    source_line,
    source_file
from {{ committed_raw('usage_quarantine') }} as quarantined
