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

{#- Day of the month (1-31) of a date or timestamp. -#}
{% macro day_of_month(ts) -%}
    {{ return(adapter.dispatch('day_of_month', 'billing')(ts)) }}
{%- endmacro %}

{% macro default__day_of_month(ts) -%}
    extract(day from {{ ts }})
{%- endmacro %}

{% macro spark__day_of_month(ts) -%}
    dayofmonth({{ ts }})
{%- endmacro %}

{#-
  The first day of the billing period a UTC date or timestamp falls in, for periods that start on
  `anchor_day` (1-28, an integer expression) of every month: the anchor day of its own month, or of
  the month before when it falls before the anchor. anchor_day 1 is the calendar month.
  A period ends where the next starts: dateadd(month, 1, period_start) (the anchor is at most 28,
  so every month has it).
-#}
{% macro billing_period_start(ts, anchor_day) -%}
    cast(
        case
            when {{ day_of_month(ts) }} >= {{ anchor_day }}
                then {{ dbt.dateadd('day', '(' ~ anchor_day ~ ') - 1', month_start(ts)) }}
            else {{ dbt.dateadd('day', '(' ~ anchor_day ~ ') - 1',
                dbt.dateadd('month', -1, month_start(ts))) }}
        end
    as date)
{%- endmacro %}

{#- The billing anchor day of an account (1 = calendar month unless seeds/billing_cycles.csv says). -#}
{% macro anchor_day_of(billing_cycles_alias) -%}
    coalesce({{ billing_cycles_alias }}.anchor_day, 1)
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
