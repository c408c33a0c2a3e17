{#-
  Every quarantined landed row, with its reason, the file and line it came from, and what could
  be read of it: for rows that failed structural validation at landing (malformed_json,
  bad_timestamp, ...) the landed text; for rows that passed it and failed a reference check in SQL
  (unknown_meter, unknown_account, future_timestamp) the typed value and timestamp.
  fct_usage_event_outcomes is the per-row register of every outcome (too large to publish at
  10^8 events); this and fct_usage_outcome_counts are its analyst-facing parts. Read from
  int_usage_events_classified, whose rows the register shows (decision 99).
  Incremental by arrival like int_usage_events_classified: a landed row's outcome never changes.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=record_arrival_watermark_hooks(),
) }}

{#- The classification holds every landed row's outcome, with the typed value and timestamp of
    the rows that failed a reference check (null for those quarantined at landing). -#}
with quarantined as (
    select * from {{ ref('int_usage_events_classified') }}
    where outcome = 'quarantined' and {{ arrived_since_last_run() }}
),

structural as (
    select raw_event_key, raw_text from {{ ref('stg_raw__usage_quarantine') }}
    where {{ arrived_since_last_run() }}
)

select
    quarantined.raw_event_key,
    quarantined.reason,
    files.file_name,
    quarantined.file_seq,
    quarantined.source_line,
    quarantined.received_at,
    quarantined.unique_id,
    quarantined.account_id,
    quarantined.meter_code,
    quarantined.value,
    quarantined.event_ts,
    structural.raw_text
from quarantined
inner join {{ ref('stg_raw__landed_files') }} as files on quarantined.file_seq = files.file_seq
left join structural on quarantined.raw_event_key = structural.raw_event_key
