{#-
  MRR-style rollup per currency and calendar month from fct_revenue_by_period (net revenue: after
  coupons and credit notes; the open period is to date). A month holds the billing periods that
  start in it: one for calendar and anniversary monthly cycles, four or five for weekly ones, one
  every third month for quarterly ones.
  Each account's net revenue of a period is compared with its own previous period (the one that
  ends where it starts, whatever the account's cycle) and the change classified as new (nothing
  the period before), expansion, contraction, or churned (billed the period before, nothing
  now). Churn shows in the period after the last billed one once that period has begun by the
  run's clock (as_of) without an invoice: a quarterly account is not churned in the two months
  between its periods. For monthly cycles the movements add up:
  net_revenue = previous month's net_revenue + new + expansion + contraction + churned.
  net_revenue = sum(fct_revenue_by_period.net_revenue) of the month and currency.
-#}
with revenue as (
    select account_id, currency, period_start, period_end, sum(net_revenue) as revenue
    from {{ ref('fct_revenue_by_period') }}
    group by account_id, currency, period_start, period_end
),

{#- Every billed period, and the period after each that has begun without an invoice (a union:
    a period after that was billed is already in the first part). -#}
account_periods as (
    select account_id, currency, period_start from revenue
    union
    select account_id, currency, period_end as period_start from revenue
    where period_end <= cast({{ as_of_timestamp() }} as date)
),

movements as (
    select
        account_periods.account_id,
        account_periods.currency,
        cast({{ dbt.date_trunc('month', 'account_periods.period_start') }} as date) as month_start,
        coalesce(current_period.revenue, 0) as revenue,
        coalesce(previous_period.revenue, 0) as previous_revenue
    from account_periods
    left join revenue as current_period
        on account_periods.account_id = current_period.account_id
        and account_periods.currency = current_period.currency
        and account_periods.period_start = current_period.period_start
    left join revenue as previous_period
        on account_periods.account_id = previous_period.account_id
        and account_periods.currency = previous_period.currency
        and previous_period.period_end = account_periods.period_start
)

select
    currency,
    month_start,
    cast(sum(revenue) as {{ money_type() }}) as net_revenue,
    count(distinct case when revenue != 0 then account_id end) as accounts_billed,
    cast(sum(case when previous_revenue = 0 and revenue > 0 then revenue else 0 end) as {{ money_type() }}) as new_revenue,
    cast(sum(case when previous_revenue > 0 and revenue > previous_revenue then revenue - previous_revenue else 0 end)
        as {{ money_type() }}) as expansion_revenue,
    cast(sum(case when previous_revenue > 0 and revenue > 0 and revenue < previous_revenue then revenue - previous_revenue else 0 end)
        as {{ money_type() }}) as contraction_revenue,
    cast(sum(case when previous_revenue > 0 and revenue = 0 then -previous_revenue else 0 end) as {{ money_type() }}) as churned_revenue
from movements
group by currency, month_start
