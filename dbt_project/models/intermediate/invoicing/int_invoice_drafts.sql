{#-
  One draft per open invoice, recalculated every run at the run's clock (var as_of): totals from
  its lines, when its period closes (period end + finalization_grace_days), and a run-rate
  estimate: the share of the period elapsed at as_of and the charges to date extrapolated
  linearly to the period end (before coupons and credits; tiers and fees scale like usage).
-#}
with lines as (
    select * from {{ ref('int_invoice_draft_lines') }}
),

totals as (
    select
        invoice_id,
        count(*) as line_count,
        sum(case when line_type not in ('coupon', 'credit') then amount else 0 end) as subtotal,
        sum(case when line_type = 'coupon' then amount else 0 end) as discount_total,
        -sum(case when line_type = 'credit' then amount else 0 end) as credits_applied,
        sum(amount) as total,
        sum(amount_minor) as total_minor
    from lines
    group by invoice_id
),

periods as (
    select
        periods.*,
        {{ as_of_timestamp() }} as as_of,
        {{ seconds_between(
            'cast(periods.period_start as timestamp)', 'cast(periods.period_end as timestamp)') }}
            as period_seconds,
        {{ seconds_between('cast(periods.period_start as timestamp)', as_of_timestamp()) }}
            as seconds_since_start
    from {{ ref('int_invoice_open_periods') }} as periods
),

elapsed as (
    select
        periods.*,
        case
            when seconds_since_start < 0 then 0
            when seconds_since_start > period_seconds then period_seconds
            else seconds_since_start
        end as elapsed_seconds
    from periods
),

issuers as (
    select
        accounts.account_id,
        coalesce(account_issuers.issuer_id, default_issuer.issuer_id) as issuer_id
    from {{ ref('accounts') }} as accounts
    left join {{ ref('account_issuers') }} as account_issuers
        on accounts.account_id = account_issuers.account_id
    cross join (select issuer_id from {{ ref('issuers') }} where is_default) as default_issuer
)

select
    elapsed.invoice_id,
    issuers.issuer_id,
    elapsed.account_id,
    accounts.account_name,
    elapsed.period_start,
    elapsed.period_end,
    elapsed.plan_code,
    elapsed.plan_version,
    elapsed.currency,
    currencies.minor_units,
    totals.line_count,
    cast(totals.subtotal as {{ money_type() }}) as subtotal,
    cast(totals.discount_total as {{ money_type() }}) as discount_total,
    cast(totals.credits_applied as {{ money_type() }}) as credits_applied,
    cast(totals.total as {{ money_type() }}) as total,
    cast(totals.total_minor as bigint) as total_minor,
    {{ period_closes_at('elapsed.period_end') }} as closes_at,
    elapsed.as_of as recalculated_at,
    cast(round({{ divide_decimal('elapsed.elapsed_seconds * 100', 'elapsed.period_seconds') }}, 1)
        as decimal(5, 1)) as cycle_elapsed_percent,
    case
        when elapsed.elapsed_seconds = 0 or totals.subtotal <= 0 then cast(totals.subtotal as {{ money_type() }})
        else {{ round_money(
            divide_decimal('totals.subtotal * elapsed.period_seconds', 'elapsed.elapsed_seconds'),
            'currencies.minor_units') }}
    end as estimated_period_charges
from elapsed
inner join totals on elapsed.invoice_id = totals.invoice_id
inner join {{ ref('accounts') }} as accounts on elapsed.account_id = accounts.account_id
inner join {{ ref('currencies') }} as currencies on elapsed.currency = currencies.currency_code
inner join issuers on elapsed.account_id = issuers.account_id
