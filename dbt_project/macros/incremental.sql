{#-
  Which UTC days a daily-partitioned usage model recomputes in an incremental run:
    1. the days of the Dagster partition window (vars usage_window_start / usage_window_end,
       half-open, '%Y-%m-%dT%H:%M:%S'), widened by usage_lookback_days before the start;
    2. every day that received an event after this model's last run: rows of `events` whose
       file_seq is above the highest max_file_seq already in {{ this }} (the arrival watermark).
  (2) is the lookback for late events: an event that arrives weeks late still restates its day,
  with no scan of history. (1) restates days on request (a re-run partition, a backfill).
  Returns a boolean SQL expression on `day_column`; use it only inside is_incremental().
  `arrival_column` names the file_seq column of `events` (max_file_seq for a rollup).
-#}
{% macro usage_days_to_rebuild(events, day_column='usage_day', arrival_column='file_seq') -%}
    {{ day_column }} in (
        select usage_day from {{ events }}
        where {{ arrival_column }} > (select coalesce(max(max_file_seq), 0) from {{ this }})
    )
    {%- if var('usage_window_start') and var('usage_window_end') %}
    or (
        {{ day_column }} >= cast({{ dbt.dateadd('day', -1 * var('usage_lookback_days') | int,
            "cast('" ~ var('usage_window_start') ~ "' as timestamp)") }} as date)
        and {{ day_column }} < cast(cast('{{ var("usage_window_end") }}' as timestamp) as date)
    )
    {%- endif %}
{%- endmacro %}

{#- The run's clock as a timestamp literal: var as_of, else the time dbt started. -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of') -%}
        cast('{{ var("as_of") }}' as timestamp)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%dT%H:%M:%S") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}
