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
        where {{ arrival_column }} > {{ arrival_watermark('max_file_seq') }}
    )
    {%- set window_start = run_var('usage_window_start') -%}
    {%- set window_end = run_var('usage_window_end') -%}
    {%- if window_start and window_end %}
    or (
        {{ day_column }} >= cast({{ dbt.dateadd('day', -1 * var('usage_lookback_days') | int,
            "cast('" ~ window_start ~ "' as timestamp)") }} as date)
        and {{ day_column }} < cast(cast('{{ window_end }}' as timestamp) as date)
    )
    {%- endif %}
{%- endmacro %}

{#- The run's clock as a timestamp literal: run_var as_of, else the time dbt started. -#}
{% macro as_of_timestamp() -%}
    {%- set as_of = run_var('as_of') -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as timestamp)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%dT%H:%M:%S") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#-
  A value that changes from run to run (as_of, usage_window_start, usage_window_end,
  finalize_periods_before): `--vars` when given, else the environment variable BILLING_RUN_<NAME>
  (BILLING_RUN_AS_OF, ...), read only while executing.
  Dagster passes its values the second way (lib/dbt_args.run_environment): dbt re-parses the whole
  project when --vars change (5 s here, per invocation), but it does not track an env var that
  parsing never reads, so the partial parse survives from run to run. Nothing that decides a
  node's refs, sources or config may depend on a run_var: at parse time it is only the --vars value.
-#}
{% macro run_var(name) -%}
    {%- set value = var(name) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('BILLING_RUN_' ~ name | upper, '') or none -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#-
  The arrival watermark a model incremental by arrival starts from, recorded per dbt invocation
  so that its tests can check only the rows this invocation added (test unique_by_arrival).
  Use as the model's pre_hook, which runs before the model's SQL while {{ this }} still holds the
  previous run's rows:
      pre_hook=record_arrival_watermark_hooks()
  The table dbt_internal.dbt_arrival_watermarks (invocation_id, model_name, arrivals_after)
  gets one row per model per run: 0 for a first or full-refresh build (everything is new).
  dbt_internal holds dbt's own bookkeeping, away from the schemas analysts query.
-#}
{#-
  The arrival watermark of a model incremental by arrival: the highest `arrival_column` already in
  {{ this }}. `arrived_since_last_run()` is the predicate for the rows of files landed since then:
  on a first or full-refresh build (not is_incremental()), every row.
      select * from {{ ref('int_usage_events_classified') }} where {{ arrived_since_last_run() }}
  When executing, the watermark is looked up as the node is compiled (before its SQL runs, as the
  subquery would be) and written into the SQL as a number: the engine can then skip the row
  groups and files below it, which it cannot do with a subquery in a nested filter (decision
  107: at 100M events the daily rollup of unique values found its days to rebuild in 1.2 s with
  the subquery, 0.03 s with the number). A unit test's `this` is a fixture, not a table: there,
  and when only parsing, it stays a subquery.
-#}
{% macro arrival_watermark(arrival_column='file_seq') -%}
    {%- set watermark_sql = "select coalesce(max(" ~ arrival_column ~ "), 0) from " ~ this -%}
    {%- if execute and model.resource_type != 'unit_test' -%}
        {{ return(run_query(watermark_sql).columns[0].values()[0] | int) }}
    {%- endif -%}
    {{ return("(" ~ watermark_sql ~ ")") }}
{%- endmacro %}

{% macro arrived_since_last_run(arrival_column='file_seq') -%}
    {%- if is_incremental() -%}
        {{ arrival_column }} > {{ arrival_watermark(arrival_column) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro arrival_watermarks_relation(relation) -%}
    {{ return(api.Relation.create(
        database=relation.database, schema='dbt_internal', identifier='dbt_arrival_watermarks'
    )) }}
{%- endmacro %}

{% macro record_arrival_watermark_hooks(arrival_column='file_seq') -%}
    {{ return([
        "{{ create_arrival_watermarks_schema() }}",
        "{{ create_arrival_watermarks() }}",
        "{{ insert_arrival_watermark('" ~ arrival_column ~ "') }}",
    ]) }}
{%- endmacro %}

{% macro create_arrival_watermarks_schema() -%}
    create schema if not exists {{ arrival_watermarks_relation(this).without_identifier().include(database=False) }}
{%- endmacro %}

{% macro create_arrival_watermarks() -%}
    create table if not exists {{ arrival_watermarks_relation(this) }} (
        invocation_id {{ dbt.type_string() }},
        model_name {{ dbt.type_string() }},
        arrivals_after {{ dbt.type_bigint() }}
    )
{%- endmacro %}

{% macro insert_arrival_watermark(arrival_column) -%}
    insert into {{ arrival_watermarks_relation(this) }} (invocation_id, model_name, arrivals_after)
    select
        '{{ invocation_id }}',
        '{{ this.identifier }}',
        {% if is_incremental() -%}
        {{ arrival_watermark(arrival_column) }}
        {%- else -%}
        0
        {%- endif %}
{%- endmacro %}

{#-
  The watermark `model` started from in this dbt invocation, or none when it did not run in this
  invocation (`dbt test` on its own, a build that selected only the test) or ran as a full build.
  `model_name` names another model of the same database instead (a view of `model`'s rows).
  Executes a query: call it only when `execute` is true.
-#}
{% macro arrival_watermark_this_invocation(model, model_name=none) -%}
    {%- set watermarks = arrival_watermarks_relation(model) -%}
    {%- if load_relation(watermarks) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query(
        "select max(arrivals_after) from " ~ watermarks
        ~ " where invocation_id = '" ~ invocation_id ~ "' and model_name = '" ~ (model_name or model.identifier) ~ "'"
    ) -%}
    {%- set watermark = result.columns[0].values()[0] -%}
    {{ return(none if watermark is none or watermark == 0 else watermark) }}
{%- endmacro %}

{#-
  The incremental config of a model that recomputes whole partitions (usage days, billing
  periods) and replaces them: delete+insert on the partition column where the engine deletes
  (DuckDB, PostgreSQL), insert_overwrite of the table partitioned by it on Spark (Parquet
  tables cannot delete rows; spark.sql.sources.partitionOverwriteMode=dynamic overwrites only
  the partitions the new rows fall in). Either way, partitions without new rows are kept.
      {{ config(on_schema_change='fail', **replace_partitions_config('usage_day')) }}
-#}
{% macro replace_partitions_config(partition_column) -%}
    {{ return(adapter.dispatch('replace_partitions_config', 'billing')(partition_column)) }}
{%- endmacro %}

{% macro default__replace_partitions_config(partition_column) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': partition_column}) }}
{%- endmacro %}

{% macro spark__replace_partitions_config(partition_column) -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': [partition_column]}) }}
{%- endmacro %}
