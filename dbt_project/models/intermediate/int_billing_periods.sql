{#-
  One billing period per account and UTC month with usage, on the subscription active in that
  month and the plan version in force on its first day. Subscriptions must not overlap for an
  account (unique test on account_id + period_start).
-#}
with usage_periods as (
    select distinct account_id, period_start, period_end
    from {{ ref('int_usage_aggregated') }}
),

subscriptions as (
    select * from {{ ref('subscriptions') }}
),

plans as (
    select * from {{ ref('price_plans') }}
)

select
    {{ dbt.concat(["'inv-'", "usage_periods.account_id", "'-'",
                   dbt.cast("usage_periods.period_start", dbt.type_string())]) }} as invoice_id,
    usage_periods.account_id,
    usage_periods.period_start,
    usage_periods.period_end,
    subscriptions.subscription_id,
    plans.plan_code,
    plans.plan_version,
    plans.currency
from usage_periods
inner join subscriptions
    on usage_periods.account_id = subscriptions.account_id
    and subscriptions.starts_on < usage_periods.period_end
    and (subscriptions.ends_on is null or subscriptions.ends_on > usage_periods.period_start)
inner join plans
    on subscriptions.plan_code = plans.plan_code
    and plans.effective_from <= usage_periods.period_start
    and (plans.effective_to is null or plans.effective_to > usage_periods.period_start)
