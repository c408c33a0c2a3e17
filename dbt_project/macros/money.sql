{#-
  THE rounding rule. Every amount that reaches an invoice is rounded exactly once, per line, by
  round_money: half-up (away from zero on a tie, so 10.125 -> 10.13 and -10.125 -> -10.13) to the
  currency's minor unit (USD 2, JPY 0, KWD 3; see seeds/currencies.csv). Invoice totals are sums of
  rounded lines, so lines always add up to the total. The Python twin for display/checks is
  dagster_billing.lib.money.round_money; it must agree with this macro (tests/test_money.py).

  DuckDB's and Spark's round() on DECIMAL both round half away from zero; round() needs a constant
  scale, hence the case over the supported minor units.
-#}
{% macro round_money(amount, minor_units) -%}
    case {{ minor_units }}
        when 0 then cast(round(cast({{ amount }} as {{ decimal_type() }}), 0) as {{ money_type() }})
        when 1 then cast(round(cast({{ amount }} as {{ decimal_type() }}), 1) as {{ money_type() }})
        when 2 then cast(round(cast({{ amount }} as {{ decimal_type() }}), 2) as {{ money_type() }})
        when 3 then cast(round(cast({{ amount }} as {{ decimal_type() }}), 3) as {{ money_type() }})
        when 4 then cast(round(cast({{ amount }} as {{ decimal_type() }}), 4) as {{ money_type() }})
    end
{%- endmacro %}

{#- Quantities, unit prices and unrounded amounts. -#}
{% macro decimal_type() -%}decimal(38,10){%- endmacro %}

{#- Rounded money amounts in major units (130.00 USD); scale 4 covers every ISO 4217 minor unit. -#}
{% macro money_type() -%}decimal(38,4){%- endmacro %}

{#-
  Exact decimal division to 10 places, rounded half-up. DuckDB's `/` returns DOUBLE even for
  DECIMAL operands, so on DuckDB we divide scaled integers (HUGEINT) instead. Both operands must be
  non-negative; the numerator fits decimal(38,10) (< 10^28), the denominator is below 8.5 x 10^17.
-#}
{% macro divide_decimal(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide_decimal', 'billing')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide_decimal(numerator, denominator) -%}
    cast(cast({{ numerator }} as {{ decimal_type() }}) / cast({{ denominator }} as {{ decimal_type() }}) as {{ decimal_type() }})
{%- endmacro %}

{#- PostgreSQL's numeric `/` rounds to a precision it chooses; div() is exact integer division. -#}
{% macro postgres__divide_decimal(numerator, denominator) -%}
    cast(
        div(
            cast({{ numerator }} as {{ decimal_type() }}) * 20000000000
              + cast({{ denominator }} as {{ decimal_type() }}),
            cast({{ denominator }} as {{ decimal_type() }}) * 2
        ) * cast(0.0000000001 as decimal(11,10))
    as {{ decimal_type() }})
{%- endmacro %}

{#- Operands are scaled to integers (HUGEINT) from their integer and fractional parts
    separately: scaling the decimal itself would overflow DECIMAL(38,10) from 10^18. The quotient
    is the integer part plus the remainder's 10 places, rounded half-up; exact for numerators up
    to the DECIMAL(38,10) maximum (10^28) and denominators below 8.5 x 10^17. -#}
{% macro duckdb__divide_decimal(numerator, denominator) -%}
    {%- set scaled_n = duckdb_scaled_integer(numerator) -%}
    {%- set scaled_d = duckdb_scaled_integer(denominator) -%}
    cast(
        cast({{ scaled_n }} // {{ scaled_d }} as decimal(38,0))
        + cast(({{ scaled_n }} % {{ scaled_d }} * 20000000000 + {{ scaled_d }}) // ({{ scaled_d }} * 2)
            as decimal(38,0)) * cast(0.0000000001 as decimal(11,10))
    as {{ decimal_type() }})
{%- endmacro %}

{#- A non-negative value of decimal(38,10) as the HUGEINT value x 10^10, exactly, over the whole
    decimal(38,10) range (DuckDB). -#}
{% macro duckdb_scaled_integer(value) -%}
    {%- set v = 'cast(' ~ value ~ ' as ' ~ decimal_type() ~ ')' -%}
    (cast(floor({{ v }}) as hugeint) * 10000000000 + cast(({{ v }} - floor({{ v }})) * 10000000000 as hugeint))
{%- endmacro %}

{#-
  Spark: a quotient of DECIMAL(38,10)s gets at most 20 integer and 18 decimal digits (rounded
  twice: at Spark's internal scale, then to 18), so the division is done in integers instead:
  long division in two limbs of `div` (exact, bigint) and `%` (exact, decimal), then the
  remainder's first 10 decimal places, rounded half-up. Exact for any quotient below 10^27.
-#}
{% macro spark__divide_decimal(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as ' ~ decimal_type() ~ ')' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as ' ~ decimal_type() ~ ')' -%}
    {%- set d_e9 = '(' ~ d ~ ' * 1000000000)' -%}
    {%- set rest_e9 = '(' ~ n ~ ' % ' ~ d_e9 ~ ')' -%}
    cast(
        cast({{ n }} div {{ d_e9 }} as decimal(19,0)) * 1000000000
        + ({{ rest_e9 }} div {{ d }})
        + cast((({{ rest_e9 }} % {{ d }}) * 20000000000 + {{ d }}) div ({{ d }} * 2) as decimal(11,0))
            * cast(0.0000000001 as decimal(11,10))
    as {{ decimal_type() }})
{%- endmacro %}

{#- Smallest integer >= numerator / denominator, exactly (package pricing). -#}
{% macro ceil_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('ceil_divide', 'billing')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__ceil_divide(numerator, denominator) -%}
    cast(ceil(cast({{ numerator }} as {{ decimal_type() }}) / cast({{ denominator }} as {{ decimal_type() }})) as bigint)
{%- endmacro %}

{% macro postgres__ceil_divide(numerator, denominator) -%}
    cast(
        div(cast({{ numerator }} as {{ decimal_type() }}), cast({{ denominator }} as {{ decimal_type() }}))
        + case
            when mod(cast({{ numerator }} as {{ decimal_type() }}), cast({{ denominator }} as {{ decimal_type() }})) > 0
            then 1 else 0
          end
    as bigint)
{%- endmacro %}

{% macro spark__ceil_divide(numerator, denominator) -%}
    {%- set n = 'cast(' ~ numerator ~ ' as ' ~ decimal_type() ~ ')' -%}
    {%- set d = 'cast(' ~ denominator ~ ' as ' ~ decimal_type() ~ ')' -%}
    cast(({{ n }} div {{ d }}) + case when {{ n }} % {{ d }} > 0 then 1 else 0 end as bigint)
{%- endmacro %}

{% macro duckdb__ceil_divide(numerator, denominator) -%}
    cast(
        ({{ duckdb_scaled_integer(numerator) }} + {{ duckdb_scaled_integer(denominator) }} - 1)
        // {{ duckdb_scaled_integer(denominator) }}
    as bigint)
{%- endmacro %}

{#- A rounded amount as an integer count of minor units (cents), e.g. for Stripe. -#}
{% macro to_minor_units(amount, minor_units) -%}
    cast(
        case {{ minor_units }}
            when 0 then {{ amount }}
            when 1 then {{ amount }} * 10
            when 2 then {{ amount }} * 100
            when 3 then {{ amount }} * 1000
            when 4 then {{ amount }} * 10000
        end
    as bigint)
{%- endmacro %}

{#- Integer minor units (an API's cents) back to a decimal amount in major units, exactly. -#}
{% macro from_minor_units(amount_minor, minor_units) -%}
    cast(
        case {{ minor_units }}
            when 0 then cast({{ amount_minor }} as {{ money_type() }})
            when 1 then cast({{ amount_minor }} as {{ money_type() }}) * cast(0.1 as decimal(2,1))
            when 2 then cast({{ amount_minor }} as {{ money_type() }}) * cast(0.01 as decimal(3,2))
            when 3 then cast({{ amount_minor }} as {{ money_type() }}) * cast(0.001 as decimal(4,3))
            when 4 then cast({{ amount_minor }} as {{ money_type() }}) * cast(0.0001 as decimal(5,4))
        end
    as {{ money_type() }})
{%- endmacro %}
