{#-
  Billing periods (decision 56). An account's cycle is its row of seeds/billing_cycles.csv, or a
  calendar month without one:
    billing_interval  week | month | quarter | year (default month)
    anchor_date       the anniversary periods are counted from (e.g. the subscription's start);
                      its day of the month is 1-28 for month-based intervals
    anchor_day        without anchor_date: the day of the month periods start on (1-28,
                      default 1); weeks start on Mondays (ISO)
  Periods start at anchor + k intervals and end where the next starts (half-open). The macros
  take the alias of the account's billing_cycles row (left-joined: null = calendar month).
-#}

{#- The interval of a cycle: week, month, quarter or year. -#}
{% macro cycle_interval(cycles) -%}
    coalesce({{ cycles }}.billing_interval, 'month')
{%- endmacro %}

{#- Months in one period of a month-based cycle (null for weeks). -#}
{% macro cycle_months(cycles) -%}
    case {{ cycle_interval(cycles) }} when 'month' then 1 when 'quarter' then 3 when 'year' then 12 end
{%- endmacro %}

{#- A period start of the cycle, about 100 years back (5,200 weeks or 1,200 months), so that every
    date of interest is after it and the counts below never go negative. -#}
{% macro cycle_origin(cycles) -%}
    case
        when {{ cycles }}.anchor_date is not null and {{ cycle_interval(cycles) }} = 'week'
            then cast({{ dbt.dateadd('day', -36400, cycles ~ '.anchor_date') }} as date)
        when {{ cycles }}.anchor_date is not null
            then cast({{ dbt.dateadd('month', -1200, cycles ~ '.anchor_date') }} as date)
        when {{ cycle_interval(cycles) }} = 'week' then cast('1900-01-01' as date)
        else cast({{ dbt.dateadd('day', '(coalesce(' ~ cycles ~ '.anchor_day, 1) - 1)', "cast('1900-01-01' as date)") }} as date)
    end
{%- endmacro %}

{#- Whole calendar months from the origin to a date, counting a month only once its day of the
    month is reached (2026-01-14 is 0 months after 2025-12-15, 2026-01-15 is 1). -#}
{% macro months_since(origin, ts) -%}
    (
        ({{ date_part_of('year', ts) }} - {{ date_part_of('year', origin) }}) * 12
        + {{ date_part_of('month', ts) }} - {{ date_part_of('month', origin) }}
        - case when {{ date_part_of('day', ts) }} < {{ date_part_of('day', origin) }} then 1 else 0 end
    )
{%- endmacro %}

{#- The first day of the period of the account's cycle that a UTC date or timestamp falls in. -#}
{% macro billing_period_start(ts, cycles) -%}
    {%- set origin = cycle_origin(cycles) -%}
    cast(
        case
            when {{ cycle_interval(cycles) }} = 'week' then
                {{ dbt.dateadd('day',
                    '7 * ' ~ count_divide(dbt.datediff(origin, 'cast(' ~ ts ~ ' as date)', 'day'), 7),
                    origin) }}
            else
                {{ dbt.dateadd('month',
                    cycle_months(cycles) ~ ' * ' ~ count_divide(months_since(origin, ts), cycle_months(cycles)),
                    origin) }}
        end
    as date)
{%- endmacro %}

{#- The exclusive end of the period that starts on period_start (the next period's start). -#}
{% macro billing_period_end(period_start, cycles) -%}
    cast(
        case
            when {{ cycle_interval(cycles) }} = 'week' then {{ dbt.dateadd('day', 7, period_start) }}
            else {{ dbt.dateadd('month', cycle_months(cycles), period_start) }}
        end
    as date)
{%- endmacro %}

{#- The start of the period `offset` periods after period_start (offset may be an expression). -#}
{% macro billing_period_after(period_start, offset, cycles) -%}
    cast(
        case
            when {{ cycle_interval(cycles) }} = 'week'
                then {{ dbt.dateadd('day', '7 * (' ~ offset ~ ')', period_start) }}
            else {{ dbt.dateadd('month', cycle_months(cycles) ~ ' * (' ~ offset ~ ')', period_start) }}
        end
    as date)
{%- endmacro %}

{#- Whole periods in a count of days or months since the origin: both non-negative integers.
    Integer division on DuckDB (floor_divide's exact decimals are for money; here they were most
    of int_usage_events_deduped's time, one period start per event: decision 94); elsewhere
    floor_divide. -#}
{% macro count_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('count_divide', 'billing')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__count_divide(numerator, denominator) -%}
    {{ floor_divide(numerator, denominator) }}
{%- endmacro %}

{% macro duckdb__count_divide(numerator, denominator) -%}
    cast(({{ numerator }}) // ({{ denominator }}) as bigint)
{%- endmacro %}

{#- year, month or day (of the month) of a date or timestamp, as an integer. -#}
{% macro date_part_of(part, ts) -%}
    {{ return(adapter.dispatch('date_part_of', 'billing')(part, ts)) }}
{%- endmacro %}

{% macro default__date_part_of(part, ts) -%}
    cast(extract({{ part }} from {{ ts }}) as integer)
{%- endmacro %}

{% macro spark__date_part_of(part, ts) -%}
    {%- if part == 'day' -%} dayofmonth({{ ts }}) {%- else -%} {{ part }}({{ ts }}) {%- endif -%}
{%- endmacro %}
