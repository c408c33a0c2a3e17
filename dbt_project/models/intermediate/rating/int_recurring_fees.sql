{#-
  Flat recurring fees: one row per flat charge and segment of the billing period it pays for (its
  service period: a month, or the account's cycle's week, quarter or year). A prorated fee is
  amount x billable_days / days of the period (trial days and days without the subscription are
  not billed); a fee with prorate: false is the full amount once, under the version of the
  period's last segment with billable days.
  in_arrears fees go on the invoice of their own period. in_advance fees go on the account's
  invoice of the period before, or, when it has none (the subscription's first period), on the
  invoice of their own period: the first invoice carries the first (prorated) fee and the next.
-#}
with segments as (
    select * from {{ ref('int_billing_segments') }}
),

invoices as (
    select invoice_id, account_id, period_start, period_end from {{ ref('int_billing_periods') }}
),

components as (
    select * from {{ ref('price_charges') }}
    where pricing_model = 'flat'
),

segment_fees as (
    select
        segments.billing_segment_id,
        segments.invoice_id as service_invoice_id,
        segments.account_id,
        segments.period_start as service_period_start,
        segments.period_end as service_period_end,
        segments.period_days,
        segments.base_plan_code,
        segments.plan_code,
        segments.plan_version,
        segments.currency,
        segments.segment_start,
        segments.segment_end,
        segments.billable_days,
        components.charge_id,
        components.charge_order,
        components.description,
        components.flat_amount,
        components.billing_timing,
        components.prorate,
        row_number() over (
            partition by segments.invoice_id, components.charge_id
            order by case when segments.billable_days > 0 then 0 else 1 end, segments.segment_start desc
        ) as billable_recency
    from segments
    inner join components
        on segments.plan_code = components.plan_code
        and segments.plan_version = components.plan_version
),

amounts as (
    select
        segment_fees.*,
        case
            when prorate then {{ prorate_by_days('flat_amount', 'billable_days', 'period_days') }}
            when billable_recency = 1 then flat_amount
            else cast(0 as {{ decimal_type() }})
        end as amount_unrounded
    from segment_fees
    where billable_days > 0
),

placed as (
    select
        amounts.*,
        case
            when amounts.billing_timing = 'in_advance' and previous.invoice_id is not null
                then previous.invoice_id
            else amounts.service_invoice_id
        end as invoice_id
    from amounts
    left join invoices as previous
        on amounts.account_id = previous.account_id
        and previous.period_end = amounts.service_period_start
    where amounts.prorate or amounts.billable_recency = 1
)

select
    {{ dbt.concat([
        "placed.invoice_id", "':'", "placed.charge_id", "':'",
        dbt.cast("placed.segment_start", dbt.type_string())
    ]) }} as invoice_line_id,
    placed.invoice_id,
    placed.billing_segment_id,
    placed.account_id,
    placed.service_period_start,
    placed.service_period_end,
    placed.segment_start,
    placed.segment_end,
    placed.period_days,
    placed.billable_days,
    placed.base_plan_code as plan_code,
    placed.plan_code as price_plan_code,
    placed.plan_version,
    placed.currency,
    placed.charge_id,
    placed.charge_order,
    placed.description,
    placed.billing_timing,
    placed.prorate,
    placed.flat_amount,
    placed.amount_unrounded
from placed
inner join invoices on placed.invoice_id = invoices.invoice_id
