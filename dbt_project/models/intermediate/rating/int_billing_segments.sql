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

{#- A period's pieces are cut at its covered days' ends, at the end of a trial and where a
    version of its plan starts or ends: every cut of a period comes from one row of it, joined
    with the versions that start or end inside it and crossed with the five kinds of cut. Each
    period is read once, so an engine that inlines CTEs (Spark) plans subscription_periods once,
    not six times (five selects in a union and a join back: 10.8 s on a fixture; decision 106). -#}
period_plan_changes as (
    select
        periods.*,
        plans.effective_from as plan_from,
        plans.effective_to as plan_to
    from subscription_periods as periods
    left join plans
        on periods.base_plan_code = plans.base_plan_code
        and (plans.account_id is null or plans.account_id = periods.account_id)
        and (
            (plans.effective_from > periods.covered_start and plans.effective_from < periods.covered_end)
            or (plans.effective_to > periods.covered_start and plans.effective_to < periods.covered_end)
        )
),

cut_kinds as (
    select kind from (values (1), (2), (3), (4), (5)) as cut_kinds (kind)
),

cuts as (
    select
        period_plan_changes.*,
        case
            when kind = 1 then covered_start
            when kind = 2 then covered_end
            when kind = 3 and trial_ends_on > covered_start and trial_ends_on < covered_end
                then trial_ends_on
            when kind = 4 and plan_from > covered_start and plan_from < covered_end then plan_from
            when kind = 5 and plan_to > covered_start and plan_to < covered_end then plan_to
        end as boundary
    from period_plan_changes
    cross join cut_kinds
),

{#- Distinct: two kinds can cut on the same day (a trial ending as a version starts). The other
    columns are the period's own. -#}
boundaries as (
    select distinct
        subscription_id, account_id, base_plan_code, trial_ends_on, period_start, period_end,
        last_period, covered_start, covered_end, boundary
    from cuts
    where boundary is not null
),

pieces as (
    select
        boundaries.*,
        boundary as piece_start,
        lead(boundary) over (partition by subscription_id, period_start order by boundary) as piece_end
    from boundaries
),

versioned_pieces as (
    select
        pieces.subscription_id,
        pieces.account_id,
        pieces.base_plan_code,
        pieces.trial_ends_on,
        pieces.period_start,
        pieces.period_end,
        pieces.last_period,
        pieces.covered_start,
        pieces.covered_end,
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
    left join plans
        on pieces.base_plan_code = plans.base_plan_code
        and (plans.account_id is null or plans.account_id = pieces.account_id)
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
