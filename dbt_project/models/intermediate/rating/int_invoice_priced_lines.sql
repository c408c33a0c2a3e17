{#-
  The lines rating prices from usage and plans, each rounded once, half-up to the currency's
  minor unit (round_money): what int_invoice_charge_lines numbers, after adding the commitment
  lines. Per line_type:
    charge     a usage-based charge (per dimension value and version segment)
    instant    a pay-in-advance charge: one line per event, what it added
               (int_usage_instant_rated), in place of the charge's period line
    discount   -discount_percent of the charge line it follows
    minimum    tops the charge (after its discount) up to its minimum_spend
    maximum    caps the charge (after its discount) at its maximum_spend (negative)
    recurring  a flat fee (service_period_* says which month it pays for), and its discount
  Money is never a quantity: base_amount carries the money a line is measured on (a percentage
  charge's transaction value, the charge a discount is a percentage of, a minimum or maximum
  spend); those lines have no quantity and no unit price (decision 78).
  Minimums and maximums are per billing period, prorated by billable days (trial excluded):
  limit x billable_days / days of the month, rounded; a minimum or maximum line is computed from
  the rounded lines it adjusts, so the adjusted total equals the rounded limit to the minor unit.
  A model of its own rather than CTEs of int_invoice_charge_lines (decision 109): the commitment
  lines read these lines twice, and Spark plans a CTE again wherever it is read.
-#}
with currencies as (
    select * from {{ ref('currencies') }}
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

segments as (
    select * from {{ ref('int_billing_segments') }}
    where is_billed_period
),

charge_terms as (
    select distinct
        plan_code,
        plan_version,
        charge_id,
        discount_percent,
        minimum_spend,
        maximum_spend,
        pay_in_advance
    from {{ ref('price_charges') }}
),

rated_usage as (
    select rated.*
    from {{ ref('fct_rated_usage') }} as rated
    left join charge_terms
        on rated.price_plan_code = charge_terms.plan_code
        and rated.plan_version = charge_terms.plan_version
        and rated.charge_id = charge_terms.charge_id
    where not coalesce(charge_terms.pay_in_advance, false)
),

base_lines as (
    select
        invoice_line_id,
        invoice_id,
        billing_segment_id,
        segment_number,
        segment_count,
        1 as line_group,
        'charge' as line_type,
        0 as kind_rank,
        segment_start as service_period_start,
        segment_end as service_period_end,
        plan_code,
        price_plan_code,
        plan_version,
        charge_id,
        charge_order,
        meter_code,
        dimension_value,
        pricing_model,
        case
            when segment_count = 1 then description
            else {{ dbt.concat([
                "description", "' (v'", dbt.cast("plan_version", dbt.type_string()),
                "' from '", dbt.cast("segment_start", dbt.type_string()), "')'"
            ]) }}
        end as description,
        {#- a percentage charge's quantity is the transactions' value: money, so it is the base -#}
        case when pricing_model = 'percentage' then null else quantity end as quantity,
        unit_price,
        cast(null as {{ decimal_type() }}) as rate_percent,
        case when pricing_model = 'percentage' then quantity end as base_amount,
        amount_unrounded
    from rated_usage

    union all

    select
        invoice_line_id,
        invoice_id,
        billing_segment_id,
        segment_number,
        segment_count,
        1 as line_group,
        'instant' as line_type,
        {#- before the charge's other lines, in event order (ids stay the events' keys) -#}
        cast(event_number - 1000000000 as integer) as kind_rank,
        segment_start as service_period_start,
        segment_end as service_period_end,
        plan_code,
        price_plan_code,
        plan_version,
        charge_id,
        charge_order,
        meter_code,
        dimension_value,
        pricing_model,
        {{ dbt.concat([
            "description", "' (event of '", dbt.cast("event_ts", dbt.type_string()), "')'"
        ]) }} as description,
        units as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(null as {{ decimal_type() }}) as rate_percent,
        cast(null as {{ decimal_type() }}) as base_amount,
        amount_unrounded
    from {{ ref('int_usage_instant_rated') }}

    union all

    select
        fees.invoice_line_id,
        fees.invoice_id,
        fees.billing_segment_id,
        0 as segment_number,
        1 as segment_count,
        2 as line_group,
        'recurring' as line_type,
        0 as kind_rank,
        fees.service_period_start,
        fees.service_period_end,
        fees.plan_code,
        fees.price_plan_code,
        fees.plan_version,
        fees.charge_id,
        fees.charge_order,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        '*' as dimension_value,
        'flat' as pricing_model,
        {{ dbt.concat([
            "fees.description", "' ('", dbt.cast("fees.service_period_start", dbt.type_string()),
            "case when fees.billable_days < fees.period_days then "
                ~ dbt.concat(["', '", dbt.cast("fees.billable_days", dbt.type_string()), "'/'",
                              dbt.cast("fees.period_days", dbt.type_string()), "' days'"])
                ~ " else '' end",
            "')'"
        ]) }} as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(null as {{ decimal_type() }}) as rate_percent,
        cast(null as {{ decimal_type() }}) as base_amount,
        fees.amount_unrounded
    from {{ ref('int_recurring_fees') }} as fees
),

discount_lines as (
    select
        {{ dbt.concat(["base_lines.invoice_line_id", "':discount'"]) }} as invoice_line_id,
        base_lines.invoice_id,
        base_lines.billing_segment_id,
        base_lines.segment_number,
        base_lines.segment_count,
        base_lines.line_group,
        'discount' as line_type,
        1 as kind_rank,
        base_lines.service_period_start,
        base_lines.service_period_end,
        base_lines.plan_code,
        base_lines.price_plan_code,
        base_lines.plan_version,
        base_lines.charge_id,
        base_lines.charge_order,
        base_lines.meter_code,
        base_lines.dimension_value,
        base_lines.pricing_model,
        {{ dbt.concat(["base_lines.description", "': discount'"]) }} as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        charge_terms.discount_percent as rate_percent,
        base_lines.amount_unrounded as base_amount,
        cast(-{{ percent_of('base_lines.amount_unrounded', 'charge_terms.discount_percent') }}
            as {{ decimal_type() }}) as amount_unrounded
    from base_lines
    inner join charge_terms
        on base_lines.price_plan_code = charge_terms.plan_code
        and base_lines.plan_version = charge_terms.plan_version
        and base_lines.charge_id = charge_terms.charge_id
    where charge_terms.discount_percent is not null
),

priced_lines as (
    select
        lines.*,
        currencies.minor_units,
        {{ round_money('lines.amount_unrounded', 'currencies.minor_units') }} as amount
    from (
        select * from base_lines
        union all
        select * from discount_lines
    ) as lines
    inner join periods on lines.invoice_id = periods.invoice_id
    inner join currencies on periods.currency = currencies.currency_code
),

charge_totals as (
    select
        priced_lines.invoice_id,
        priced_lines.billing_segment_id,
        priced_lines.segment_number,
        priced_lines.segment_count,
        priced_lines.plan_code,
        priced_lines.price_plan_code,
        priced_lines.plan_version,
        priced_lines.charge_id,
        priced_lines.charge_order,
        priced_lines.meter_code,
        priced_lines.pricing_model,
        priced_lines.service_period_start,
        priced_lines.service_period_end,
        priced_lines.minor_units,
        min(priced_lines.description) as description,
        sum(priced_lines.amount) as net_amount
    from priced_lines
    where priced_lines.line_group = 1
    group by
        priced_lines.invoice_id, priced_lines.billing_segment_id, priced_lines.segment_number,
        priced_lines.segment_count, priced_lines.plan_code, priced_lines.price_plan_code, priced_lines.plan_version,
        priced_lines.charge_id, priced_lines.charge_order, priced_lines.meter_code,
        priced_lines.pricing_model, priced_lines.service_period_start,
        priced_lines.service_period_end, priced_lines.minor_units
),

charge_limits as (
    select
        charge_totals.*,
        case when charge_terms.minimum_spend is not null then
            {{ round_money(prorate_by_days('charge_terms.minimum_spend', 'segments.billable_days', 'segments.period_days'), 'charge_totals.minor_units') }}
        end as minimum_amount,
        case when charge_terms.maximum_spend is not null then
            {{ round_money(prorate_by_days('charge_terms.maximum_spend', 'segments.billable_days', 'segments.period_days'), 'charge_totals.minor_units') }}
        end as maximum_amount
    from charge_totals
    inner join charge_terms
        on charge_totals.price_plan_code = charge_terms.plan_code
        and charge_totals.plan_version = charge_terms.plan_version
        and charge_totals.charge_id = charge_terms.charge_id
    inner join segments on charge_totals.billing_segment_id = segments.billing_segment_id
    where charge_terms.minimum_spend is not null or charge_terms.maximum_spend is not null
),

limit_lines as (
    select
        {{ dbt.concat([
            "invoice_id", "':'", "charge_id",
            "case when segment_count = 1 then '' else "
                ~ dbt.concat(["'@'", dbt.cast("service_period_start", dbt.type_string())]) ~ " end",
            "':'", "line_type"
        ]) }} as invoice_line_id,
        limited.*
    from (
        select
            invoice_id,
            billing_segment_id,
            segment_number,
            segment_count,
            1 as line_group,
            case when net_amount < minimum_amount then 'minimum' else 'maximum' end as line_type,
            case when net_amount < minimum_amount then 2 else 3 end as kind_rank,
            service_period_start,
            service_period_end,
            plan_code,
            price_plan_code,
            plan_version,
            charge_id,
            charge_order,
            meter_code,
            '*' as dimension_value,
            pricing_model,
            {{ dbt.concat([
                "description",
                "case when net_amount < minimum_amount then ': minimum spend' "
                    ~ "else ': maximum spend' end"
            ]) }} as description,
            cast(null as {{ decimal_type() }}) as quantity,
            cast(null as {{ decimal_type() }}) as unit_price,
            cast(null as {{ decimal_type() }}) as rate_percent,
            cast(
                case when net_amount < minimum_amount then minimum_amount else maximum_amount end
            as {{ decimal_type() }}) as base_amount,
            cast(
                case when net_amount < minimum_amount then minimum_amount - net_amount
                    else maximum_amount - net_amount end
            as {{ decimal_type() }}) as amount_unrounded,
            minor_units
        from charge_limits
        where net_amount < minimum_amount or net_amount > maximum_amount
    ) as limited
)

select * from priced_lines

union all

select
    limit_lines.*,
    {{ round_money('limit_lines.amount_unrounded', 'limit_lines.minor_units') }} as amount
from limit_lines
