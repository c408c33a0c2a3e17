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
    cast({{ duckdb_scaled_integer(numerator) }} // {{ duckdb_scaled_integer(denominator) }} as bigint)
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

{#- The columns every rated row carries from int_charge_quantities (alias `quantities`). -#}
{% macro rated_quantity_columns() -%}
    quantities.invoice_line_id,
    quantities.billing_segment_id,
    quantities.invoice_id,
    quantities.account_id,
    quantities.period_start,
    quantities.period_end,
    quantities.period_days,
    quantities.base_plan_code,
    quantities.plan_code,
    quantities.plan_version,
    quantities.currency,
    quantities.segment_number,
    quantities.segment_count,
    quantities.segment_start,
    quantities.segment_end,
    quantities.days,
    quantities.billable_days,
    quantities.covered_days,
    quantities.charge_id,
    quantities.charge_order,
    quantities.dimension_match,
    quantities.dimension_value,
    quantities.meter_code,
    quantities.pricing_model,
    quantities.description,
    quantities.quantity,
    quantities.event_count,
    quantities.seat_days
{%- endmacro %}

{#- The charge quantities of the given price models with their terms (price_charges) and the
    quantity after free units (billable_quantity). -#}
{% macro rated_quantities(pricing_models) -%}
    select
        charge_quantities.*,
        charges.free_units,
        charges.package_size,
        charges.package_price,
        charges.package_rounding,
        charges.seat_proration,
        charges.block_policy,
        charges.amount_property,
        charges.multiplier,
        cast(
            case when charge_quantities.quantity > coalesce(charges.free_units, 0)
                then charge_quantities.quantity - coalesce(charges.free_units, 0) else 0 end
        as {{ decimal_type() }}) as billable_quantity
    from {{ ref('int_charge_quantities') }} as charge_quantities
    inner join {{ ref('price_charges') }} as charges
        on charge_quantities.plan_code = charges.plan_code
        and charge_quantities.plan_version = charges.plan_version
        and charge_quantities.charge_id = charges.charge_id
        and charge_quantities.component_value = charges.dimension_value
    where charge_quantities.pricing_model in ('{{ pricing_models | join("', '") }}')
{%- endmacro %}

{#- Every accepted event of the charges of one price model, matched to the billed segment and
    charge component it bills in: the meter's total ('all'), one dimension value ('value'), the
    most specific partial filter of a multi-key meter that matches it ('filter',
    int_charge_dimension_matches), or every value no 'value' or 'filter' component of the charge
    claims ('each', the event's own value).
    Columns: the segment and component, the component's terms (component_columns), and the
    event (raw_event_key, value, event_ts, file_seq, source_line). -#}
{% macro events_of_charges(pricing_models, component_columns) -%}
    {%- set models = [pricing_models] if pricing_models is string else pricing_models -%}
    select
        segments.billing_segment_id,
        segments.invoice_id,
        segments.account_id,
        segments.period_start,
        segments.base_plan_code,
        segments.plan_code,
        segments.plan_version,
        segments.segment_number,
        segments.segment_count,
        segments.segment_start,
        segments.segment_end,
        components.charge_id,
        components.charge_order,
        components.pricing_model,
        components.description,
        components.dimension_value as component_value,
        components.dimension_match,
        components.meter_code,
        {% for column in component_columns %}components.{{ column }},
        {% endfor -%}
        case
            when components.dimension_match = 'each' then events.dimension_value
            else components.dimension_value
        end as dimension_value,
        events.raw_event_key,
        events.aggregation,
        events.value,
        events.event_ts,
        events.file_seq,
        events.source_line
    from {{ ref('int_billing_segments') }} as segments
    inner join {{ ref('price_charges') }} as components
        on segments.plan_code = components.plan_code
        and segments.plan_version = components.plan_version
    inner join {{ ref('int_usage_events_deduped') }} as events
        on segments.account_id = events.account_id
        and segments.period_start = events.period_start
        and components.meter_code = events.meter_code
    left join {{ ref('price_charges') }} as listed_values
        on components.plan_code = listed_values.plan_code
        and components.plan_version = listed_values.plan_version
        and components.charge_id = listed_values.charge_id
        and listed_values.dimension_match = 'value'
        and events.dimension_value = listed_values.dimension_value
    left join {{ ref('int_charge_dimension_matches') }} as claimed
        on components.plan_code = claimed.plan_code
        and components.plan_version = claimed.plan_version
        and components.charge_id = claimed.charge_id
        and events.dimension_value = claimed.dimension_value
    where segments.is_billed_period
        and components.pricing_model in ('{{ models | join("', '") }}')
        and (
            components.dimension_match = 'all'
            or (components.dimension_match = 'value'
                and events.dimension_value = components.dimension_value)
            or (components.dimension_match = 'filter'
                and claimed.dimension_match = 'filter'
                and claimed.component_value = components.dimension_value)
            or (components.dimension_match = 'each'
                and events.dimension_value != '*' and listed_values.charge_id is null
                and claimed.charge_id is null)
        )
{%- endmacro %}

{#- A text as decimal(38,10), or null when it is not a number (DuckDB and Spark try_cast). -#}
{% macro try_decimal(text) -%}
    {{ return(adapter.dispatch('try_decimal', 'billing')(text)) }}
{%- endmacro %}

{% macro default__try_decimal(text) -%}
    try_cast({{ text }} as {{ decimal_type() }})
{%- endmacro %}

{% macro postgres__try_decimal(text) -%}
    case when {{ text }} ~ '^\s*-?[0-9]+(\.[0-9]+)?\s*$' then cast({{ text }} as {{ decimal_type() }}) end
{%- endmacro %}

{#- The fee type of an invoice line (what a credit grant's fee_type restricts it to): recurring
    fees are `subscription`, commitment lines (no price model) `commitment`, every usage
    charge and its discount, minimum, maximum and late-usage adjustment `usage`. -#}
{% macro fee_type_of(pricing_model) -%}
    case
        when {{ pricing_model }} = 'flat' then 'subscription'
        when {{ pricing_model }} is null then 'commitment'
        else 'usage'
    end
{%- endmacro %}

{#- The join condition of a charge component's row (with plan_code, plan_version, charge_id,
    component_value) to its tiers in price_tiers. -#}
{% macro tiers_of_component(component, tiers) -%}
    {{ component }}.plan_code = {{ tiers }}.plan_code
    and {{ component }}.plan_version = {{ tiers }}.plan_version
    and {{ component }}.charge_id = {{ tiers }}.charge_id
    and {{ component }}.component_value = {{ tiers }}.dimension_value
{%- endmacro %}

{#- The columns of a rated tier row, in the order int_usage_rated unions them. -#}
{% macro rated_tier_columns() -%}
    rated_tier_id, invoice_line_id, billing_segment_id, invoice_id, account_id, period_start,
    period_end, period_days, base_plan_code, plan_code, plan_version, currency,
    segment_number, segment_count, segment_start, segment_end, days, billable_days,
    covered_days, charge_id, charge_order, dimension_match, dimension_value, meter_code,
    pricing_model, description, quantity, event_count, seat_days, billable_quantity,
    tier_number, lower_bound, upper_bound, unit_price, block_size, rate_percent,
    tier_quantity, flat_fee_charged,
    block_count as package_count,
    cast(null as bigint) as transaction_count,
    amount_unrounded
{%- endmacro %}
