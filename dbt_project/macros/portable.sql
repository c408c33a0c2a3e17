{#- Small cross-database helpers: DuckDB by default, PostgreSQL and Spark through adapter.dispatch. -#}

{#- A JSON string field of a JSON-object text column; key may be a column or a quoted literal. -#}
{% macro json_field(json_column, key_expression) -%}
    {{ return(adapter.dispatch('json_field', 'billing')(json_column, key_expression)) }}
{%- endmacro %}

{% macro default__json_field(json_column, key_expression) -%}
    json_extract_string({{ json_column }}, '$.' || {{ key_expression }})
{%- endmacro %}

{% macro postgres__json_field(json_column, key_expression) -%}
    (cast({{ json_column }} as json) ->> {{ key_expression }})
{%- endmacro %}

{% macro spark__json_field(json_column, key_expression) -%}
    get_json_object({{ json_column }}, concat('$.', {{ key_expression }}))
{%- endmacro %}

{#- Seconds between two timestamps, as an integer: whole-second boundaries crossed, as DuckDB's
    date_diff('second', ...) counts them (12:00:00.9 -> 12:00:01.1 is 1 second). -#}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'billing')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__seconds_between(start_ts, end_ts) -%}
    {{ dbt.datediff(start_ts, end_ts, 'second') }}
{%- endmacro %}

{% macro postgres__seconds_between(start_ts, end_ts) -%}
    cast(
        extract(epoch from date_trunc('second', cast({{ end_ts }} as timestamp)))
        - extract(epoch from date_trunc('second', cast({{ start_ts }} as timestamp)))
    as bigint)
{%- endmacro %}

{% macro spark__seconds_between(start_ts, end_ts) -%}
    (unix_timestamp({{ end_ts }}) - unix_timestamp({{ start_ts }}))
{%- endmacro %}

{#- First day of the calendar month of a timestamp, as a date. -#}
{% macro month_start(ts) -%}
    cast({{ dbt.date_trunc('month', ts) }} as date)
{%- endmacro %}

{#-
  The materialization of a mart that is a view where the warehouse is DuckDB's own file, but that
  the Python side reads (exports): a table on Spark, where Python reads the tables' Parquet
  files through DuckDB and a Spark view has no files.
      {{ config(materialized=view_or_table_for_readers()) }}
-#}
{% macro view_or_table_for_readers() -%}
    {{ return(adapter.dispatch('view_or_table_for_readers', 'billing')()) }}
{%- endmacro %}

{% macro default__view_or_table_for_readers() -%}
    {{ return('view') }}
{%- endmacro %}

{% macro spark__view_or_table_for_readers() -%}
    {{ return('table') }}
{%- endmacro %}
