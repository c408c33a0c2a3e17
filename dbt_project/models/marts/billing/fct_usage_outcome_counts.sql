{#-
  What became of the rows of each landed file: rows per outcome (accepted, duplicate,
  quarantined) and quarantine reason. Summed over all files it is the nothing-lost identity
  raw = accepted + duplicates + quarantined (tests/assert_outcome_counts_cover_landed_rows.sql).
  Incremental by arrival: a file's outcomes are final once it is classified.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

with outcomes as (
    select * from {{ ref('fct_usage_event_outcomes') }}
    where {{ arrived_since_last_run() }}
)

select
    outcomes.file_seq,
    files.file_name,
    files.landed_at,
    cast(files.landed_at as date) as landed_day,
    outcomes.outcome,
    outcomes.reason,
    count(*) as row_count,
    sum(case when outcomes.is_conflicting then 1 else 0 end) as conflicting_count
from outcomes
inner join {{ ref('stg_raw__landed_files') }} as files on outcomes.file_seq = files.file_seq
group by outcomes.file_seq, files.file_name, files.landed_at, outcomes.outcome, outcomes.reason
