{#-
  Building blocks for the reverse-ETL payload models (models/marts/sync). A sync model holds the
  exact JSON a destination receives, as text, so the push assets only ship it.

  Money is written as exact decimal strings with the currency's minor units ("130.00", JPY "101")
  or as integer minor units (Stripe); quantities as decimal strings without trailing zeros. No
  value passes through a binary float.

  Implemented for DuckDB (default), PostgreSQL and Spark. On Spark a JSON object is a struct
  and an array an array of structs until json_text serializes the whole payload with to_json,
  which writes the same text as DuckDB's JSON functions (no spaces, keys in order, nulls kept).
-#}

{#- A JSON object from (key, SQL expression) pairs; keys are literal names, values SQL. -#}
{% macro json_object(pairs) -%}
    {{ return(adapter.dispatch('json_object', 'billing')(pairs)) }}
{%- endmacro %}

{% macro default__json_object(pairs) -%}
    json_object({% for key, value in pairs %}'{{ key }}', {{ value }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{% macro postgres__json_object(pairs) -%}
    json_build_object({% for key, value in pairs %}'{{ key }}', {{ value }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{% macro spark__json_object(pairs) -%}
    named_struct({% for key, value in pairs %}'{{ key }}', {{ value }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- An aggregate: the JSON array of an expression over the group, in a given order. -#}
{% macro json_array_agg(expression, order_by) -%}
    {{ return(adapter.dispatch('json_array_agg', 'billing')(expression, order_by)) }}
{%- endmacro %}

{% macro default__json_array_agg(expression, order_by) -%}
    to_json(list({{ expression }} order by {{ order_by }}))
{%- endmacro %}

{% macro postgres__json_array_agg(expression, order_by) -%}
    json_agg({{ expression }} order by {{ order_by }})
{%- endmacro %}

{#- collect_list keeps no order: sort (order key, value) pairs, then keep the values. -#}
{% macro spark__json_array_agg(expression, order_by) -%}
    transform(
        array_sort(collect_list(named_struct('order_key', {{ order_by }}, 'value', {{ expression }}))),
        entry -> entry.value
    )
{%- endmacro %}

{#- A JSON value as text (the payload column). -#}
{% macro json_text(json_expression) -%}
    {{ return(adapter.dispatch('json_text', 'billing')(json_expression)) }}
{%- endmacro %}

{% macro default__json_text(json_expression) -%}
    cast({{ json_expression }} as {{ dbt.type_string() }})
{%- endmacro %}

{% macro spark__json_text(json_expression) -%}
    to_json({{ json_expression }}, map('ignoreNullFields', 'false'))
{%- endmacro %}

{#- A rounded amount as an exact decimal string with exactly the currency's minor units. -#}
{% macro money_text(amount, minor_units) -%}
    case {{ minor_units }}
        when 0 then cast(cast({{ amount }} as decimal(38,0)) as {{ dbt.type_string() }})
        when 1 then cast(cast({{ amount }} as decimal(38,1)) as {{ dbt.type_string() }})
        when 2 then cast(cast({{ amount }} as decimal(38,2)) as {{ dbt.type_string() }})
        when 3 then cast(cast({{ amount }} as decimal(38,3)) as {{ dbt.type_string() }})
        when 4 then cast(cast({{ amount }} as decimal(38,4)) as {{ dbt.type_string() }})
    end
{%- endmacro %}

{#- A decimal(38,10) quantity as a plain decimal string without trailing zeros ("50000", "0.125"). -#}
{% macro decimal_text(value) -%}
    {{ return(adapter.dispatch('decimal_text', 'billing')(value)) }}
{%- endmacro %}

{% macro default__decimal_text(value) -%}
    rtrim(rtrim(cast(cast({{ value }} as {{ decimal_type() }}) as {{ dbt.type_string() }}), '0'), '.')
{%- endmacro %}

{#- Spark's two-argument rtrim is (trim characters, string); the standard form is unambiguous. -#}
{% macro spark__decimal_text(value) -%}
    trim(trailing '.' from trim(trailing '0' from cast(cast({{ value }} as {{ decimal_type() }}) as string)))
{%- endmacro %}

{#- A date as ISO 8601 text (YYYY-MM-DD). -#}
{% macro date_text(value) -%}
    cast(cast({{ value }} as date) as {{ dbt.type_string() }})
{%- endmacro %}

{#- Seconds since the Unix epoch of a date (midnight UTC), for APIs that take timestamps. -#}
{% macro unix_seconds(date_value) -%}
    cast({{ seconds_between("cast('1970-01-01' as timestamp)", "cast(" ~ date_value ~ " as timestamp)") }} as bigint)
{%- endmacro %}

{#- A string literal for SQL, from a configured value (NetSuite internal ids come from vars). -#}
{% macro sql_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- The NetSuite internal id of a currency code column, from var('netsuite_currency_ids'). -#}
{% macro netsuite_currency_id(currency_column) -%}
    case {{ currency_column }}
    {%- for code, internal_id in var('netsuite_currency_ids').items() %}
        when {{ sql_literal(code) }} then {{ sql_literal(internal_id) }}
    {%- endfor %}
    end
{%- endmacro %}
