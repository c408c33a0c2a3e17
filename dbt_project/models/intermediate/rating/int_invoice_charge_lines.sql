{#-
  The end of rating: every line an invoice owes before coupons and prepaid credits, each rounded
  once, half-up to the currency's minor unit (round_money). In this order (line_sequence):
    charge               a usage-based charge (per dimension value and version segment)
    instant              a pay-in-advance charge: one line per event, what it added
                         (int_usage_instant_rated), in place of the charge's period line
    discount             -discount_percent of the charge line it follows
    minimum              tops the charge (after its discount) up to its minimum_spend
    maximum              caps the charge (after its discount) at its maximum_spend (negative)
    recurring            a flat fee (service_period_* says which month it pays for), and its discount
    commitment_discount  -commitment discount_percent of the segment's usage lines (charge,
                         discount, minimum, maximum)
    commitment_true_up   commitment minimum - what the commitment period was billed (its lines
                         by service period, wherever they are invoiced), never negative
  Money is never a quantity: base_amount carries the money a line is measured on (a percentage
  charge's transaction value, the charge a discount is a percentage of, a minimum or maximum
  spend, the usage spend a commitment discount takes its rate of, the commitment of a true-up);
  those lines have no quantity and no unit price (decision 78).
  Minimums, maximums and commitments are per billing period, prorated by billable days (trial
  excluded): limit x billable_days / days of the month, rounded; the minimum, maximum and
  true-up lines are computed from the rounded lines they adjust, so the adjusted total equals
  the rounded limit to the minor unit.
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

plans as (
    select * from {{ ref('price_plans') }}
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
),

usage_and_fee_lines as (
    select
        invoice_line_id, invoice_id, billing_segment_id, segment_number, segment_count,
        line_group, line_type, kind_rank, service_period_start, service_period_end, plan_code,
        price_plan_code, plan_version, charge_id, charge_order, meter_code, dimension_value,
        pricing_model, description, quantity, unit_price, rate_percent, base_amount,
        amount_unrounded,
        minor_units, amount
    from priced_lines

    union all

    select
        invoice_line_id, invoice_id, billing_segment_id, segment_number, segment_count,
        line_group, line_type, kind_rank, service_period_start, service_period_end, plan_code,
        price_plan_code, plan_version, charge_id, charge_order, meter_code, dimension_value,
        pricing_model, description, quantity, unit_price, rate_percent, base_amount,
        amount_unrounded,
        minor_units,
        {{ round_money('amount_unrounded', 'minor_units') }} as amount
    from limit_lines
),

commitment_segments as (
    select
        segments.*,
        plans.commitment_minimum,
        plans.commitment_discount_percent,
        currencies.minor_units
    from segments
    inner join plans
        on segments.plan_code = plans.plan_code
        and segments.plan_version = plans.plan_version
    inner join currencies on segments.currency = currencies.currency_code
    where plans.commitment_minimum is not null or plans.commitment_discount_percent is not null
),

commitment_discount_lines as (
    select
        {{ dbt.concat([
            "commitment_segments.invoice_id", "':commitment_discount'",
            "case when commitment_segments.segment_count = 1 then '' else "
                ~ dbt.concat(["'@'", dbt.cast("commitment_segments.segment_start", dbt.type_string())])
                ~ " end"
        ]) }} as invoice_line_id,
        commitment_segments.invoice_id,
        commitment_segments.billing_segment_id,
        commitment_segments.segment_number,
        commitment_segments.segment_count,
        3 as line_group,
        'commitment_discount' as line_type,
        0 as kind_rank,
        commitment_segments.segment_start as service_period_start,
        commitment_segments.segment_end as service_period_end,
        commitment_segments.base_plan_code as plan_code,
        commitment_segments.plan_code as price_plan_code,
        commitment_segments.plan_version,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        0 as charge_order,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        '*' as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        'Committed-spend discount' as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        commitment_segments.commitment_discount_percent as rate_percent,
        cast(usage_totals.usage_amount as {{ decimal_type() }}) as base_amount,
        cast(-{{ percent_of('usage_totals.usage_amount', 'commitment_segments.commitment_discount_percent') }}
            as {{ decimal_type() }}) as amount_unrounded,
        commitment_segments.minor_units
    from commitment_segments
    inner join (
        select billing_segment_id, sum(amount) as usage_amount
        from usage_and_fee_lines
        where line_group = 1
        group by billing_segment_id
    ) as usage_totals on commitment_segments.billing_segment_id = usage_totals.billing_segment_id
    where commitment_segments.commitment_discount_percent is not null
        and usage_totals.usage_amount > 0
),

lines_before_true_up as (
    select * from usage_and_fee_lines
    union all
    select
        commitment_discount_lines.*,
        {{ round_money('amount_unrounded', 'minor_units') }} as amount
    from commitment_discount_lines
),

commitments as (
    select
        invoice_id,
        max(minor_units) as minor_units,
        max(segment_count) as segment_count,
        max(base_plan_code) as plan_code,
        max(plan_code) as price_plan_code,
        max(plan_version) as plan_version,
        min(segment_start) as service_period_start,
        max(segment_end) as service_period_end,
        {{ round_money(
            'sum(' ~ prorate_by_days('commitment_minimum', 'billable_days', 'period_days') ~ ')',
            'max(minor_units)'
        ) }} as commitment_amount
    from commitment_segments
    where commitment_minimum is not null
    group by invoice_id
),

true_up_lines as (
    select
        {{ dbt.concat(["commitments.invoice_id", "':commitment_true_up'"]) }} as invoice_line_id,
        commitments.invoice_id,
        cast(null as {{ dbt.type_string() }}) as billing_segment_id,
        commitments.segment_count as segment_number,
        commitments.segment_count,
        4 as line_group,
        'commitment_true_up' as line_type,
        0 as kind_rank,
        commitments.service_period_start,
        commitments.service_period_end,
        commitments.plan_code,
        commitments.price_plan_code,
        commitments.plan_version,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        0 as charge_order,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        '*' as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        'Minimum commitment true-up' as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(null as {{ decimal_type() }}) as rate_percent,
        cast(commitments.commitment_amount as {{ decimal_type() }}) as base_amount,
        cast(commitments.commitment_amount - coalesce(spent.amount, 0) as {{ decimal_type() }})
            as amount_unrounded,
        commitments.minor_units,
        cast(commitments.commitment_amount - coalesce(spent.amount, 0) as {{ money_type() }})
            as amount
    from commitments
    left join (
        {#- What the commitment period was billed, on any invoice: its lines by service period,
            so its in-advance fees (on the previous invoice) count and the next period's
            in-advance fees on this invoice do not. -#}
        select committed.invoice_id, sum(lines.amount) as amount
        from lines_before_true_up as lines
        inner join periods as billed on lines.invoice_id = billed.invoice_id
        inner join periods as committed
            on billed.account_id = committed.account_id
            and lines.service_period_start >= committed.period_start
            and lines.service_period_start < committed.period_end
        group by committed.invoice_id
    ) as spent on commitments.invoice_id = spent.invoice_id
    where commitments.commitment_amount > coalesce(spent.amount, 0)
),

all_lines as (
    select * from lines_before_true_up
    union all
    select * from true_up_lines
)

select
    all_lines.invoice_line_id,
    all_lines.invoice_id,
    cast(row_number() over (
        partition by all_lines.invoice_id
        order by all_lines.line_group, all_lines.segment_number, all_lines.charge_order,
            all_lines.service_period_start, all_lines.dimension_value, all_lines.kind_rank,
            all_lines.invoice_line_id
    ) as integer) as line_sequence,
    all_lines.line_type,
    periods.account_id,
    periods.period_start,
    periods.period_end,
    all_lines.service_period_start,
    all_lines.service_period_end,
    periods.currency,
    all_lines.minor_units,
    all_lines.plan_code,
    all_lines.price_plan_code,
    all_lines.plan_version,
    all_lines.billing_segment_id,
    all_lines.charge_id,
    all_lines.meter_code,
    all_lines.dimension_value,
    all_lines.pricing_model,
    all_lines.description,
    cast(all_lines.quantity as {{ decimal_type() }}) as quantity,
    cast(all_lines.unit_price as {{ decimal_type() }}) as unit_price,
    cast(all_lines.rate_percent as {{ decimal_type() }}) as rate_percent,
    cast(all_lines.base_amount as {{ decimal_type() }}) as base_amount,
    cast(all_lines.amount_unrounded as {{ decimal_type() }}) as amount_unrounded,
    cast(all_lines.amount as {{ money_type() }}) as amount,
    {{ to_minor_units('all_lines.amount', 'all_lines.minor_units') }} as amount_minor
from all_lines
inner join periods on all_lines.invoice_id = periods.invoice_id
