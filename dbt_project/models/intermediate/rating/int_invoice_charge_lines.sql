{#-
  The end of rating: every line an invoice owes before coupons and prepaid credits, each rounded
  once, half-up to the currency's minor unit (round_money). int_invoice_priced_lines prices the
  charge, instant, discount, minimum, maximum and recurring lines; this model adds the commitment
  lines and numbers them all. In this order (line_sequence):
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
  Money is never a quantity: base_amount carries the money a line is measured on (for the
  commitment lines, the usage spend a commitment discount takes its rate of and the commitment of
  a true-up); those lines have no quantity and no unit price (decision 78).
  Commitments are per billing period, prorated by billable days (trial excluded): commitment x
  billable_days / days of the month, rounded; the true-up is computed from the rounded lines it
  adjusts, so the adjusted total equals the rounded commitment to the minor unit.
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

priced_lines as (
    select * from {{ ref('int_invoice_priced_lines') }}
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
        from priced_lines
        where line_group = 1
        group by billing_segment_id
    ) as usage_totals on commitment_segments.billing_segment_id = usage_totals.billing_segment_id
    where commitment_segments.commitment_discount_percent is not null
        and usage_totals.usage_amount > 0
),

lines_before_true_up as (
    select * from priced_lines
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
