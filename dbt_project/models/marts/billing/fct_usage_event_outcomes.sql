{#-
  Nothing is lost: exactly one row per landed row, with its outcome (accepted, duplicate,
  quarantined) and, when quarantined, why. The row count equals the rows of raw.landed_files
  (tested in tests/assert_nothing_lost.sql and by a Dagster asset check).
  Incremental by arrival, like int_usage_events_classified: outcomes never change once written.
-#}
{#- Append, no unique_key: a run only adds rows of files no run has seen (raw_event_key carries
    the file's hash), so a delete+insert by key would find nothing and scan all history to find
    it. unique_by_arrival on fct_usage_event_outcomes and int_usage_events_deduped proves it. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=record_arrival_watermark_hooks(),
) }}

{% set watermark -%}
    (select coalesce(max(file_seq), 0) from {{ this }})
{%- endset %}

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
{% if is_incremental() %}
where file_seq > {{ watermark }}
{% endif %}

union all

select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    file_seq,
    source_line,
    received_at,
    'quarantined' as outcome,
    reason,
    false as is_conflicting
from {{ ref('stg_raw__usage_quarantine') }}
{% if is_incremental() %}
where file_seq > {{ watermark }}
{% endif %}
