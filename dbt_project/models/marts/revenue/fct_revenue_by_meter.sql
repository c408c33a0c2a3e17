{#-
  Gross revenue (before coupons) per meter, billing period and currency from invoice lines: rated
  lines and late-usage adjustments by the meter they price ('(none)' for lines without one, such
  as recurring fees), less credit note lines in the period of the invoice they correct. Coupons
  and credits are invoice-level and not split by meter. Ties to fct_revenue_by_period:
  sum(gross_revenue) per period and currency = sum(fct_revenue_by_period.gross_revenue)
  (tests/assert_revenue_marts_tie.sql). Tax is not revenue.
-#}
with billed as (
    select period_start, currency, coalesce(meter_code, '(none)') as meter_code, status, amount
    from {{ ref('fct_invoice_lines') }}
    where line_type not in {{ non_gross_line_types() }}
),

credited as (
    select invoices.period_start, lines.currency, coalesce(lines.meter_code, '(none)') as meter_code,
           'final' as status, -lines.amount as amount
    from {{ ref('fct_credit_note_lines') }} as lines
    inner join {{ ref('fct_invoices') }} as invoices on lines.invoice_id = invoices.invoice_id
    where lines.line_type != 'tax'
),

amounts as (
    select * from billed
    union all
    select * from credited
)

select
    period_start,
    currency,
    meter_code,
    cast(sum(case when status = 'final' then amount else 0 end) as {{ money_type() }}) as gross_revenue_final,
    cast(sum(case when status = 'draft' then amount else 0 end) as {{ money_type() }}) as gross_revenue_draft,
    cast(sum(amount) as {{ money_type() }}) as gross_revenue
from amounts
group by period_start, currency, meter_code
