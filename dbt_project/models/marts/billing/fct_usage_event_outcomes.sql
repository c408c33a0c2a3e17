{#-
  Nothing is lost: exactly one row per landed row, with its outcome (accepted, duplicate,
  quarantined) and, when quarantined, why. The row count equals the rows of raw.landed_files
  (tested in tests/assert_nothing_lost.sql and by a Dagster asset check).
  The outcomes are int_usage_events_classified's, which holds every landed row: on DuckDB (and
  Postgres) this is a view of its columns, not a second copy of every event (decision 99); on
  Spark, where Python reads tables' Parquet files, an incremental table by arrival, like the
  model it copies (macro view_or_table_for_readers). Outcomes never change once written.
-#}
{{ config(
    materialized=view_or_table_for_readers('incremental'),
    incremental_strategy='append',
    on_schema_change='fail',
) }}

select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    file_seq,
    source_line,
    received_at,
    outcome,
    reason,
    is_conflicting
from {{ ref('int_usage_events_classified') }}
where {{ arrived_since_last_run() }}
