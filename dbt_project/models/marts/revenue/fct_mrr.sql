{#-
  MRR-style rollup per currency and month from fct_revenue_by_period (net revenue: after coupons
  and credit notes; the open month is to date): net_revenue, accounts billed, and the
  month-over-month movement of each account's net revenue classified as new (nothing the month
  before), expansion, contraction, or churned (billed the month before, nothing now).
  net_revenue = sum(fct_revenue_by_period.net_revenue) of the month and currency.
-#}
with revenue as (
    select account_id, currency, period_start as month_start, sum(net_revenue) as revenue
    from {{ ref('fct_revenue_by_period') }}
    group by account_id, currency, period_start
),

months as (
    select distinct currency, month_start from revenue
),

account_months as (
    select revenue.account_id, revenue.currency, revenue.month_start from revenue
    union
    select revenue.account_id, revenue.currency, months.month_start
    from revenue
    inner join months
        on revenue.currency = months.currency
        and months.month_start = cast({{ dbt.dateadd('month', 1, 'revenue.month_start') }} as date)
),

movements as (
    select
        account_months.account_id,
        account_months.currency,
        account_months.month_start,
        coalesce(current_month.revenue, 0) as revenue,
        coalesce(previous_month.revenue, 0) as previous_revenue
    from account_months
    left join revenue as current_month
        on account_months.account_id = current_month.account_id
        and account_months.currency = current_month.currency
        and account_months.month_start = current_month.month_start
    left join revenue as previous_month
        on account_months.account_id = previous_month.account_id
        and account_months.currency = previous_month.currency
        and previous_month.month_start = cast({{ dbt.dateadd('month', -1, 'account_months.month_start') }} as date)
)

select
    currency,
    month_start,
    cast(sum(revenue) as {{ money_type() }}) as net_revenue,
    sum(case when revenue != 0 then 1 else 0 end) as accounts_billed,
    cast(sum(case when previous_revenue = 0 and revenue > 0 then revenue else 0 end) as {{ money_type() }}) as new_revenue,
    cast(sum(case when previous_revenue > 0 and revenue > previous_revenue then revenue - previous_revenue else 0 end)
        as {{ money_type() }}) as expansion_revenue,
    cast(sum(case when previous_revenue > 0 and revenue > 0 and revenue < previous_revenue then revenue - previous_revenue else 0 end)
        as {{ money_type() }}) as contraction_revenue,
    cast(sum(case when previous_revenue > 0 and revenue = 0 then -previous_revenue else 0 end) as {{ money_type() }}) as churned_revenue
from movements
group by currency, month_start
