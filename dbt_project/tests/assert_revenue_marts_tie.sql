{{ config(meta={"dagster": {"ref": {"name": "fct_mrr"}}}) }}
-- The revenue marts tie per billing period and currency: gross by meter = gross by invoice, and
-- net by month (fct_mrr) = net by invoice, where net = gross + discount_total (coupons).
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

by_month as (
    select month_start as period_start, currency, net_revenue
    from {{ ref('fct_mrr') }}
)

select
    coalesce(by_period.period_start, by_meter.period_start, by_month.period_start) as period_start,
    coalesce(by_period.currency, by_meter.currency, by_month.currency) as currency,
    by_period.gross_revenue, by_meter.gross_revenue as gross_by_meter,
    by_period.net_revenue, by_month.net_revenue as net_by_month
from by_period
full outer join by_meter
    on by_period.period_start = by_meter.period_start and by_period.currency = by_meter.currency
full outer join by_month
    on coalesce(by_period.period_start, by_meter.period_start) = by_month.period_start
    and coalesce(by_period.currency, by_meter.currency) = by_month.currency
where coalesce(by_period.gross_revenue, 0) != coalesce(by_meter.gross_revenue, 0)
   or coalesce(by_period.net_revenue, 0) != coalesce(by_month.net_revenue, 0)
   or coalesce(by_period.net_revenue, 0) != coalesce(by_period.gross_less_coupons, 0)
