{#-
  One draft per open invoice, recalculated every run at the run's clock (var as_of): totals from
  its lines, when its period closes (period end + finalization_grace_days), and a run-rate
  estimate: the share of the period elapsed at as_of and the charges to date extrapolated
  linearly to the period end (before coupons and credits; tiers and fees scale like usage).
  The document fields an issued invoice needs come with it: the customer as invoiced, payment
  terms and the due date they give (issue day + terms), and the tax determination
  (int_invoice_taxes). The ledger freezes them with the lines when the invoice is booked.
-#}
with lines as (
    select * from {{ ref('int_invoice_draft_lines') }}
),

totals as (
    select
        invoice_id,
        count(*) as line_count,
        sum(case when line_type not in {{ non_gross_line_types() }} then amount else 0 end) as subtotal,
        sum(case when line_type = 'coupon' then amount else 0 end) as discount_total,
        sum(case when line_type = 'tax' then amount else 0 end) as tax_total,
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
)

select
    elapsed.invoice_id,
    parties.issuer_id,
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
    cast(totals.tax_total as {{ money_type() }}) as tax_total,
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
    end as estimated_period_charges,
    parties.customer_legal_name,
    parties.customer_address,
    parties.customer_country,
    parties.customer_tax_id,
    parties.payment_terms_days,
    cast({{ dbt.dateadd('day', 'parties.payment_terms_days', 'cast(' ~ period_closes_at('elapsed.period_end') ~ ' as date)') }}
        as date) as due_on,
    taxes.tax_code,
    taxes.tax_treatment,
    taxes.tax_note
from elapsed
inner join totals on elapsed.invoice_id = totals.invoice_id
inner join {{ ref('accounts') }} as accounts on elapsed.account_id = accounts.account_id
inner join {{ ref('currencies') }} as currencies on elapsed.currency = currencies.currency_code
inner join {{ ref('int_invoice_parties') }} as parties on elapsed.account_id = parties.account_id
left join {{ ref('int_invoice_taxes') }} as taxes on elapsed.invoice_id = taxes.invoice_id
