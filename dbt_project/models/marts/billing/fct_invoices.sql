{#- One invoice per account and billing period; the total is the sum of its rounded lines. -#}
with periods as (
    select * from {{ ref('int_billing_periods') }}
),

lines as (
    select
        invoice_id,
        count(*) as line_count,
        cast(sum(amount) as {{ money_type() }}) as subtotal,
        cast(sum(amount_minor) as bigint) as subtotal_minor
    from {{ ref('fct_invoice_lines') }}
    group by invoice_id
)

select
    periods.invoice_id,
    periods.account_id,
    accounts.account_name,
    periods.period_start,
    periods.period_end,
    periods.plan_code,
    periods.plan_version,
    periods.currency,
    currencies.minor_units,
    lines.line_count,
    lines.subtotal,
    lines.subtotal as total,
    lines.subtotal_minor as total_minor
from periods
inner join lines on periods.invoice_id = lines.invoice_id
inner join {{ ref('accounts') }} as accounts on periods.account_id = accounts.account_id
inner join {{ ref('currencies') }} as currencies on periods.currency = currencies.currency_code
