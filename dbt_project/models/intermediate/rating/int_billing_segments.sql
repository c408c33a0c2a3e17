{#-
  The days of every billing period and what is in force on them. A billing period is one period
  of the account's billing cycle (a UTC calendar month, or the week, month, quarter or year of
  seeds/billing_cycles.csv, calendar or anniversary; decision 56); a segment is the run of its
  days on one subscription and one plan version (an
  account override from plans/overrides/ wins over the public version on the days it covers).
  Days are whole UTC dates: a subscription's start day counts in full, ends_on is exclusive.
  Days without a plan version in force keep plan_code null, which fails the not_null test: a
  subscribed day is never silently unpriced.
    days           days of the segment
    billable_days  days of the segment after the trial (trial_ends_on, exclusive)
    covered_days   days of the period on any subscription of the account (usage charges of a
                   segment are weighted days / covered_days: a version change prorates by days)
  Billed periods run from the period of the first to that of the last day with landed usage, in
  each account's cycle (override with the vars
  billing_from / billing_through, YYYY-MM-DD: the periods they fall in); the period after is kept, not billed
  (is_billed_period = false), because in-advance fees for it go on the last billed invoice.
-#}
with usage_months as (
    select
        min(usage_day) as first_usage_period,
        max(usage_day) as last_usage_period
    from {{ ref('int_usage_daily') }}
),

horizon as (
    select
        {% if var('billing_from', none) -%}
            cast('{{ var('billing_from') }}' as date)
        {%- else -%} first_usage_period {%- endif %} as first_period,
        {% if var('billing_through', none) -%}
            cast('{{ var('billing_through') }}' as date)
        {%- else -%} last_usage_period {%- endif %} as last_period
    from usage_months
),

digits as (
    select n from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) as digits (n)
),

{#- Up to 1,000 periods per subscription: 19 years of weeks, 83 of months. -#}
period_offsets as (
    select ones.n + 10 * tens.n + 100 * hundreds.n as period_offset
    from digits as ones
    cross join digits as tens
    cross join digits as hundreds
),

subscriptions as (
    select * from {{ ref('subscriptions') }}
),

plans as (
    select * from {{ ref('price_plans') }}
),

subscription_ranges as (
    select
        subscriptions.subscription_id,
        subscriptions.account_id,
        subscriptions.plan_code as base_plan_code,
        subscriptions.starts_on,
        subscriptions.ends_on,
        subscriptions.trial_ends_on,
        cycles.billing_interval,
        cycles.anchor_date,
        cycles.anchor_day,
        {{ billing_period_start('horizon.last_period', 'cycles') }} as last_period,
        greatest(
            {{ billing_period_start('subscriptions.starts_on', 'cycles') }},
            {{ billing_period_start('horizon.first_period', 'cycles') }}
        ) as first_period,
        {{ billing_period_after(billing_period_start('horizon.last_period', 'cycles'), 2, 'cycles') }}
            as spine_end
    from subscriptions
    cross join horizon
    left join {{ ref('billing_cycles') }} as cycles on subscriptions.account_id = cycles.account_id
    where horizon.first_period is not null
),

subscription_months as (
    select
        subscription_ranges.*,
        {{ billing_period_after('subscription_ranges.first_period', 'period_offsets.period_offset', 'subscription_ranges') }}
            as period_start,
        {{ billing_period_after('subscription_ranges.first_period', 'period_offsets.period_offset + 1', 'subscription_ranges') }}
            as period_end
    from subscription_ranges
    inner join period_offsets
        on {{ billing_period_after('subscription_ranges.first_period', 'period_offsets.period_offset', 'subscription_ranges') }}
            < subscription_ranges.spine_end
),

covered as (
    select
        subscription_months.*,
        greatest(starts_on, period_start) as covered_start,
        least(coalesce(ends_on, period_end), period_end) as covered_end
    from subscription_months
),

subscription_periods as (
    select * from covered where covered_start < covered_end
),

boundaries as (
    select subscription_id, period_start, covered_start as boundary from subscription_periods
    union
    select subscription_id, period_start, covered_end from subscription_periods
    union
    select subscription_id, period_start, trial_ends_on from subscription_periods
    where trial_ends_on > covered_start and trial_ends_on < covered_end
    union
    select periods.subscription_id, periods.period_start, plans.effective_from
    from subscription_periods as periods
    inner join plans
        on periods.base_plan_code = plans.base_plan_code
        and (plans.account_id is null or plans.account_id = periods.account_id)
    where plans.effective_from > periods.covered_start and plans.effective_from < periods.covered_end
    union
    select periods.subscription_id, periods.period_start, plans.effective_to
    from subscription_periods as periods
    inner join plans
        on periods.base_plan_code = plans.base_plan_code
        and (plans.account_id is null or plans.account_id = periods.account_id)
    where plans.effective_to > periods.covered_start and plans.effective_to < periods.covered_end
),

pieces as (
    select
        subscription_id,
        period_start,
        boundary as piece_start,
        lead(boundary) over (partition by subscription_id, period_start order by boundary) as piece_end
    from boundaries
),

versioned_pieces as (
    select
        periods.subscription_id,
        periods.account_id,
        periods.base_plan_code,
        periods.trial_ends_on,
        periods.period_start,
        periods.period_end,
        periods.last_period,
        periods.covered_start,
        periods.covered_end,
        pieces.piece_start,
        pieces.piece_end,
        plans.plan_code,
        plans.plan_version,
        plans.currency,
        row_number() over (
            partition by pieces.subscription_id, pieces.period_start, pieces.piece_start
            order by case when plans.account_id is null then 1 else 0 end
        ) as preference
    from pieces
    inner join subscription_periods as periods
        on pieces.subscription_id = periods.subscription_id
        and pieces.period_start = periods.period_start
    left join plans
        on periods.base_plan_code = plans.base_plan_code
        and (plans.account_id is null or plans.account_id = periods.account_id)
        and plans.effective_from <= pieces.piece_start
        and (plans.effective_to is null or plans.effective_to > pieces.piece_start)
    where pieces.piece_end is not null
),

segments as (
    select
        {{ dbt.concat(["'inv-'", "account_id", "'-'", dbt.cast("period_start", dbt.type_string())]) }} as invoice_id,
        account_id,
        period_start,
        period_end,
        period_start <= last_period as is_billed_period,
        subscription_id,
        base_plan_code,
        plan_code,
        plan_version,
        currency,
        min(piece_start) as segment_start,
        max(piece_end) as segment_end,
        sum({{ dbt.datediff('piece_start', 'piece_end', 'day') }}) as days,
        sum(
            case when trial_ends_on is null or piece_start >= trial_ends_on
                then {{ dbt.datediff('piece_start', 'piece_end', 'day') }} else 0 end
        ) as billable_days,
        max({{ dbt.datediff('covered_start', 'covered_end', 'day') }}) as subscription_days
    from versioned_pieces
    where preference = 1
    group by
        account_id, period_start, period_end, last_period, subscription_id, base_plan_code,
        plan_code, plan_version, currency
)

select
    {{ dbt.concat(["invoice_id", "':'", dbt.cast("segment_start", dbt.type_string())]) }} as billing_segment_id,
    invoice_id,
    account_id,
    period_start,
    period_end,
    cast({{ dbt.datediff('period_start', 'period_end', 'day') }} as integer) as period_days,
    is_billed_period,
    subscription_id,
    base_plan_code,
    plan_code,
    plan_version,
    currency,
    cast(row_number() over (partition by invoice_id order by segment_start) as integer) as segment_number,
    cast(count(*) over (partition by invoice_id) as integer) as segment_count,
    segment_start,
    segment_end,
    cast(days as integer) as days,
    cast(billable_days as integer) as billable_days,
    cast(subscription_days as integer) as subscription_days,
    cast(sum(days) over (partition by invoice_id) as integer) as covered_days
from segments
