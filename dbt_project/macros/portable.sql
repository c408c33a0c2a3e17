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
  An md5 fingerprint of a text, for equality tests only (int_usage_events_classified compares a
  duplicate's body with its first arrival's): dbt.hash's 32 hex characters, but on DuckDB the
  same md5 as its 128-bit number (md5_number), cheaper to build and compare (decisions 93, 97).
  fingerprint_type() is its column type.
-#}
{% macro fingerprint(text) -%}
    {{ return(adapter.dispatch('fingerprint', 'billing')(text)) }}
{%- endmacro %}

{% macro default__fingerprint(text) -%}
    {{ dbt.hash(text) }}
{%- endmacro %}

{% macro duckdb__fingerprint(text) -%}
    md5_number(cast({{ text }} as varchar))
{%- endmacro %}

{% macro fingerprint_type() -%}
    {{ return(adapter.dispatch('fingerprint_type', 'billing')()) }}
{%- endmacro %}

{% macro default__fingerprint_type() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}

{% macro duckdb__fingerprint_type() -%}
    {{ return('uhugeint') }}
{%- endmacro %}

{#-
  A 64-bit hash of a key, stored beside it so that a lookup of a batch's keys among all of
  history reads the hash column only, then the key itself for the few rows whose hash matched
  (decision 103). Never an identity on its own: two keys may share a hash, so the rows it finds
  are compared by the key. Stable across engine versions (it is stored): md5's low 64 bits on
  DuckDB (its hash() may change between versions), Spark's xxhash64, dbt.hash elsewhere.
  On DuckDB it is md5_number's top 64 bits (`>> 64`): the very value md5_number_lower gives
  (DuckDB names the halves by the digest's byte order), which earlier warehouses stored, in a
  fifth of the time (decision 120).
-#}
{% macro key_hash(key) -%}
    {{ return(adapter.dispatch('key_hash', 'billing')(key)) }}
{%- endmacro %}

{% macro default__key_hash(key) -%}
    {{ dbt.hash(key) }}
{%- endmacro %}

{% macro duckdb__key_hash(key) -%}
    cast(md5_number(cast({{ key }} as varchar)) >> 64 as ubigint)
{%- endmacro %}

{% macro spark__key_hash(key) -%}
    xxhash64({{ key }})
{%- endmacro %}

{#-
  The materialization of a mart that is a view where the warehouse is DuckDB's own file (or
  Postgres), but that the Python side reads (exports, checks): on Spark, where Python reads the
  tables' Parquet files through DuckDB and a Spark view has no files, `otherwise`. That is a
  table, or for a mart that copies the rows of a model incremental by arrival, 'incremental' (a
  table rebuilt every run would copy all of history each time; the model's SQL filters with
  arrived_since_last_run(), every row when not is_incremental(), which a view never is).
      {{ config(materialized=view_or_table_for_readers()) }}
      {{ config(materialized=view_or_table_for_readers('incremental')) }}
-#}
{% macro view_or_table_for_readers(otherwise='table') -%}
    {{ return(adapter.dispatch('view_or_table_for_readers', 'billing')(otherwise)) }}
{%- endmacro %}

{% macro default__view_or_table_for_readers(otherwise) -%}
    {{ return('view') }}
{%- endmacro %}

{% macro spark__view_or_table_for_readers(otherwise) -%}
    {{ return(otherwise) }}
{%- endmacro %}

{#-
  A CTE that several parts of one query read, written `name as {{ inlined() }} (...)`: in a full
  build each reader runs its SQL again (with its own filters and columns pushed down) instead of
  the engine storing the CTE's rows first. DuckDB and Postgres store a CTE read more than once;
  over every event of a full build that copy is the biggest thing the query holds (100M events:
  10 GB spilled to disk and the whole memory limit, decision 100). An incremental run's CTE
  holds only the rows it rebuilds, found by a filter that reads the model's own table: storing
  them is cheap, and running that filter once per reader is not (at 100M the daily rollup's
  incremental run took 3.8 s inlined, 0.2 s stored). Spark inlines CTEs and has no such keyword.
-#}
{% macro inlined() -%}
    {{ return(adapter.dispatch('inlined', 'billing')()) }}
{%- endmacro %}

{% macro default__inlined() -%}
    {%- set incremental_run = config.get('materialized') == 'incremental' and is_incremental() -%}
    {{ return('' if incremental_run else 'not materialized') }}
{%- endmacro %}

{% macro spark__inlined() -%}
    {{ return('') }}
{%- endmacro %}

{#- Multi-dimensional meters (decision 81). meters.dimension_key lists a meter's keys separated
    by '|' (model|region); an event's dimension value is then the combination
    `model=gpt-4o|region=eu` (keys in declared order, '*' for a missing key, '%', '|' and '*' in
    values percent-encoded), or '*' when every key is missing. One key keeps the bare value. The
    Python twin is pricing.plan_types.dimension_combination. -#}
{% macro max_dimension_keys() -%}4{%- endmacro %}

{#- The i-th (1-based) '|'-separated part of a text, '' beyond the last. -#}
{% macro dimension_part(text, position) -%}
    {{ return(adapter.dispatch('dimension_part', 'billing')(text, position)) }}
{%- endmacro %}

{% macro default__dimension_part(text, position) -%}
    coalesce(split_part({{ text }}, '|', {{ position }}), '')
{%- endmacro %}

{#- try_element_at: NULL beyond the last part, where element_at fails under ANSI mode. -#}
{% macro spark__dimension_part(text, position) -%}
    coalesce(try_element_at(split({{ text }}, '[|]'), {{ position }}), '')
{%- endmacro %}

{#- The dimension value of an event: its properties (JSON text) on the meter's keys. -#}
{% macro event_dimension_value(properties, keys) -%}
    {%- set parts = [] -%}
    {%- set values = [] -%}
    {%- for position in range(1, max_dimension_keys() | int + 1) -%}
        {%- set key = dimension_part(keys, position) -%}
        {%- set value = "case when " ~ key ~ " != '' then " ~ json_field(properties, key) ~ " end" -%}
        {%- do values.append(value) -%}
        {%- set encoded = "coalesce(replace(replace(replace(" ~ value ~ ", '%', '%25'), '|', '%7C'), '*', '%2A'), '*')" -%}
        {%- set part = dbt.concat(([] if loop.first else ["'|'"]) + [key, "'='", encoded]) -%}
        {%- do parts.append(part if loop.first else "case when " ~ key ~ " != '' then " ~ part ~ " else '' end") -%}
    {%- endfor -%}
    case
        when {{ keys }} is null or {{ keys }} not like '%|%'
            then coalesce({{ json_field(properties, keys) }}, '*')
        when coalesce({{ values | join(', ') }}) is null then '*'
        else {{ dbt.concat(parts) }}
    end
{%- endmacro %}

{#- True when a combination matches a component's filter pattern: every part equal, or the
    pattern's part is `<key>=*` (any value). Both come from the same meter's keys. -#}
{% macro dimension_matches(pattern, combination) -%}
    ({% for position in range(1, max_dimension_keys() | int + 1) -%}
        {%- set wanted = dimension_part(pattern, position) -%}
        ({{ wanted }} = {{ dimension_part(combination, position) }} or {{ wanted }} like '%=*')
        {%- if not loop.last %} and {% endif %}
    {%- endfor %})
{%- endmacro %}

{#- How many keys a filter pattern fixes (its parts that are not `<key>=*`). -#}
{% macro dimension_specificity(pattern) -%}
    ({% for position in range(1, max_dimension_keys() | int + 1) -%}
        {%- set part = dimension_part(pattern, position) -%}
        case when {{ part }} = '' or {{ part }} like '%=*' then 0 else 1 end
        {%- if not loop.last %} + {% endif %}
    {%- endfor %})
{%- endmacro %}

{#-
  An aggregate: `value` on the row of the group that sorts last by `order_columns` (column names,
  compared in order). They must order the group's rows totally (event time, file_seq,
  source_line do), or which row wins is up to the engine. One pass, no sort of the group's rows:
  arg_max over a struct on DuckDB, max_by on Spark, an ordered array_agg on Postgres.
-#}
{% macro last_by(value, order_columns) -%}
    {{ return(adapter.dispatch('last_by', 'billing')(value, order_columns)) }}
{%- endmacro %}

{% macro default__last_by(value, order_columns) -%}
    max_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro duckdb__last_by(value, order_columns) -%}
    arg_max({{ value }}, struct_pack({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro postgres__last_by(value, order_columns) -%}
    (array_agg({{ value }} order by {{ order_columns | join(' desc, ') }} desc))[1]
{%- endmacro %}
