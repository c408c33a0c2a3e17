{#-
  One invoice per account and billed UTC month on which the account had a subscription, with the
  plan version in force at the end of the period (the last segment). The days and versions of
  the period are in int_billing_segments.
-#}
with segments as (
    select * from {{ ref('int_billing_segments') }}
    where is_billed_period
),

plans as (
    select * from {{ ref('price_plans') }}
)

select
    segments.invoice_id,
    segments.account_id,
    segments.period_start,
    segments.period_end,
    segments.period_days,
    segments.covered_days,
    segments.segment_count,
    segments.subscription_id,
    segments.base_plan_code as plan_code,
    segments.plan_version,
    segments.plan_code as price_plan_code,
    plans.account_id is not null as has_account_terms,
    plans.plan_name,
    segments.currency
from segments
inner join plans
    on segments.plan_code = plans.plan_code
    and segments.plan_version = plans.plan_version
where segments.segment_number = segments.segment_count
