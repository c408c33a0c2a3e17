{#-
  Expose the raw layer (Parquet files under $BILLING_DATA_DIR/raw/<table>/, written by landing:
  dagster_billing/defs/ingest/raw_store.py) as the tables of the source `raw`, on every engine.
  Runs as on-run-start (dbt_project.yml), as dbt-external-tables' stage_external_sources would:
    DuckDB  a view per table over read_parquet (a typed empty view before anything landed)
    Spark   an external table per table, `using parquet location ...` (recreated every run, so
            a new column or another data directory is picked up; dropping it keeps the files)
  Columns and types come from the source's YAML (models/staging/_raw__sources.yml). The tables
  show every file; the staging models keep only committed batches (stg_raw__* filter on
  landed_files).
-#}
{% macro stage_raw_sources() -%}
    {%- if execute -%}
        {%- do adapter.dispatch('stage_raw_sources', 'billing')(raw_layer_dir(), raw_source_tables()) -%}
    {%- endif -%}
{%- endmacro %}

{% macro raw_layer_dir() -%}
    {{ return(env_var('BILLING_DATA_DIR', '../data') ~ '/raw') }}
{%- endmacro %}

{#- The source tables of `raw` as (name, [(column, data_type), ...]), in YAML order. -#}
{% macro raw_source_tables() -%}
    {%- set tables = [] -%}
    {%- for node in graph.sources.values() | selectattr('source_name', 'equalto', 'raw') | sort(attribute='name') -%}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append((column.name, column.data_type)) -%}
        {%- endfor -%}
        {%- do tables.append((node.name, columns)) -%}
    {%- endfor -%}
    {{ return(tables) }}
{%- endmacro %}

{% macro default__stage_raw_sources(raw_dir, tables) -%}
    {#- Other targets (the bench's PostgreSQL) get the raw tables loaded by their harness. -#}
{%- endmacro %}

{% macro duckdb__stage_raw_sources(raw_dir, tables) -%}
    {%- do run_query('create schema if not exists raw') -%}
    {%- for name, columns in tables -%}
        {%- set pattern = raw_dir ~ '/' ~ name ~ '/**/*.parquet' -%}
        {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] -%}
        {%- if found > 0 -%}
            {%- set relation_sql = "select * from read_parquet('" ~ pattern ~ "', union_by_name = true)" -%}
        {%- else -%}
            {%- set typed_nulls = [] -%}
            {%- for column, data_type in columns -%}
                {%- do typed_nulls.append('cast(null as ' ~ data_type ~ ') as ' ~ column) -%}
            {%- endfor -%}
            {%- set relation_sql = 'select ' ~ typed_nulls | join(', ') ~ ' where false' -%}
        {%- endif -%}
        {%- do run_query('create or replace view raw.' ~ name ~ ' as ' ~ relation_sql) -%}
    {%- endfor -%}
{%- endmacro %}

{% macro spark__stage_raw_sources(raw_dir, tables) -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- for name, columns in tables -%}
        {%- set column_list = [] -%}
        {%- for column, data_type in columns -%}
            {%- do column_list.append(column ~ ' ' ~ data_type) -%}
        {%- endfor -%}
        {%- do run_query('drop table if exists raw.' ~ name) -%}
        {%- do run_query(
            'create table raw.' ~ name ~ ' (' ~ column_list | join(', ') ~ ')'
            ~ " using parquet options (recursiveFileLookup 'true')"
            ~ " location '" ~ raw_dir ~ '/' ~ name ~ "'"
        ) -%}
    {%- endfor -%}
{%- endmacro %}

{#- Rows of the source table `name` whose landing batch committed (is in landed_files). -#}
{% macro committed_raw(name) -%}
    (
        select * from {{ source('raw', name) }}
        where batch_id in (select batch_id from {{ source('raw', 'landed_files') }})
    )
{%- endmacro %}
