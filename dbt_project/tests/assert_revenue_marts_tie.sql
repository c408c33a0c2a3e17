{{ config(meta={"dagster": {"ref": {"name": "fct_mrr"}}}) }}
-- The revenue marts tie per currency: per billing period, gross by meter = gross by invoice and
-- net = gross + discount_total (coupons); per calendar month of the periods' start, net by
-- invoice = fct_mrr's net revenue.
with by_period as (
    select period_start, currency, sum(gross_revenue) as gross_revenue,
           sum(net_revenue) as net_revenue, sum(gross_revenue + discount_total) as gross_less_coupons
    from {{ ref('fct_revenue_by_period') }}
    group by period_start, currency
),

by_meter as (
    select period_start, currency, sum(gross_revenue) as gross_revenue
    from {{ ref('fct_revenue_by_meter') }}
    group by period_start, currency
),

by_invoice_month as (
    select
        cast({{ dbt.date_trunc('month', 'period_start') }} as date) as month_start,
        currency,
        sum(net_revenue) as net_revenue
    from {{ ref('fct_revenue_by_period') }}
    group by cast({{ dbt.date_trunc('month', 'period_start') }} as date), currency
),

by_month as (
    select month_start, currency, net_revenue
    from {{ ref('fct_mrr') }}
)

select
    coalesce(by_period.period_start, by_meter.period_start) as period_start,
    coalesce(by_period.currency, by_meter.currency) as currency,
    'gross by meter = gross by invoice' as rule,
    by_period.gross_revenue as expected,
    by_meter.gross_revenue as actual
from by_period
full outer join by_meter
    on by_period.period_start = by_meter.period_start and by_period.currency = by_meter.currency
where coalesce(by_period.gross_revenue, 0) != coalesce(by_meter.gross_revenue, 0)

union all

select
    period_start,
    currency,
    'net = gross + coupons' as rule,
    gross_less_coupons as expected,
    net_revenue as actual
from by_period
where net_revenue != gross_less_coupons

union all

select
    coalesce(by_invoice_month.month_start, by_month.month_start) as period_start,
    coalesce(by_invoice_month.currency, by_month.currency) as currency,
    'fct_mrr net = net by invoice, per month' as rule,
    by_invoice_month.net_revenue as expected,
    by_month.net_revenue as actual
from by_invoice_month
full outer join by_month
    on by_invoice_month.month_start = by_month.month_start
    and by_invoice_month.currency = by_month.currency
where coalesce(by_invoice_month.net_revenue, 0) != coalesce(by_month.net_revenue, 0)
