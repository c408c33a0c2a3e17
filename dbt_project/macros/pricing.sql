{#- Arithmetic the price models share. Amounts in and out are decimal_type() (38,10), unrounded;
    invoice lines round them once with round_money. Operands are non-negative. -#}

{#- Largest integer <= numerator / denominator, exactly (package pricing, rounding down). -#}
{% macro floor_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('floor_divide', 'billing')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__floor_divide(numerator, denominator) -%}
    cast(floor(cast({{ numerator }} as {{ decimal_type() }}) / cast({{ denominator }} as {{ decimal_type() }})) as bigint)
{%- endmacro %}

{% macro duckdb__floor_divide(numerator, denominator) -%}
    cast(
        cast(cast({{ numerator }} as {{ decimal_type() }}) * 10000000000 as hugeint)
        // cast(cast({{ denominator }} as {{ decimal_type() }}) * 10000000000 as hugeint)
    as bigint)
{%- endmacro %}

{#- div is Spark's exact integral division (bigint). -#}
{% macro spark__floor_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ decimal_type() }}) div cast({{ denominator }} as {{ decimal_type() }}))
{%- endmacro %}

{#- amount x part_days / whole_days, to 10 places (half-up): day-based proration. -#}
{% macro prorate_by_days(amount, part_days, whole_days) -%}
    {{ divide_decimal('cast(' ~ amount ~ ' as ' ~ decimal_type() ~ ') * ' ~ part_days, whole_days) }}
{%- endmacro %}

{#- amount x percent / 100, to 10 places (half-up); percent is written in percent (18 = 18 %). -#}
{% macro percent_of(amount, percent) -%}
    cast(
        cast({{ amount }} as {{ decimal_type() }}) * cast({{ percent }} as {{ decimal_type() }})
        * cast(0.01 as decimal(3,2))
    as {{ decimal_type() }})
{%- endmacro %}

{#- Id of a usage charge line: <invoice>:<charge>[:<dimension value>][@<segment start>]; the
    segment start only when a version or subscription change splits the period. -#}
{% macro charge_line_id(relation) -%}
    {{ dbt.concat([
        relation ~ ".invoice_id", "':'", relation ~ ".charge_id",
        "case when " ~ relation ~ ".dimension_match = 'all' then '' else "
            ~ dbt.concat(["':'", relation ~ ".dimension_value"]) ~ " end",
        "case when " ~ relation ~ ".segment_count = 1 then '' else "
            ~ dbt.concat(["'@'", dbt.cast(relation ~ ".segment_start", dbt.type_string())]) ~ " end",
    ]) }}
{%- endmacro %}
