{#-
  One row per usage quota (usage_quotas seed) and billing period of its account: the period's
  usage of the meter against the quota's limit, and whether the account still has access
  (decision 121). used_quantity is the meter's period quantity as rating counts it
  (int_usage_aggregated across dimension values: sum, count, max, unique count, latest or
  time-weighted, by the meter's aggregation): the quantity the invoice counts.
    bill   a soft limit: usage past it is billed as the plan prices it; access stays.
    block  a hard limit: has_access is false once used_quantity reaches limit_quantity, for the
           product to stop serving (GET /v1/accounts/{account}/quotas reads this table from the
           published snapshot). Usage that still arrives is recorded and billed like any other:
           the biller never drops an event.
  A period without usage of the meter uses 0. Quotas are effective-dated: a period is measured
  against the quota whose [valid_from, valid_to) holds its start (one at most:
  assert_usage_quotas_do_not_overlap), so a limit raised from March leaves February's row as it was.
-#}
with quotas as (
    select * from {{ ref('usage_quotas') }}
),

periods as (
    select account_id, period_start, period_end from {{ ref('int_billing_periods') }}
),

period_usage as (
    select account_id, meter_code, period_start, quantity
    from {{ ref('int_usage_aggregated') }}
    where dimension_value = '*'
),

measured as (
    select
        quotas.quota_id,
        quotas.account_id,
        quotas.meter_code,
        periods.period_start,
        periods.period_end,
        quotas.limit_quantity,
        quotas.overage_policy,
        cast(coalesce(period_usage.quantity, 0) as {{ decimal_type() }}) as used_quantity
    from quotas
    inner join periods
        on quotas.account_id = periods.account_id
        and periods.period_start >= quotas.valid_from
        and (quotas.valid_to is null or periods.period_start < quotas.valid_to)
    left join period_usage
        on quotas.account_id = period_usage.account_id
        and quotas.meter_code = period_usage.meter_code
        and periods.period_start = period_usage.period_start
)

select
    {{ dbt.concat(["quota_id", "':'", dbt.cast("period_start", dbt.type_string())]) }}
        as quota_period_id,
    quota_id,
    account_id,
    meter_code,
    period_start,
    period_end,
    limit_quantity,
    overage_policy,
    used_quantity,
    cast(case when used_quantity < limit_quantity then limit_quantity - used_quantity else 0 end
        as {{ decimal_type() }}) as remaining_quantity,
    cast(case when used_quantity > limit_quantity then used_quantity - limit_quantity else 0 end
        as {{ decimal_type() }}) as overage_quantity,
    used_quantity >= limit_quantity as is_exhausted,
    not (overage_policy = 'block' and used_quantity >= limit_quantity) as has_access
from measured
