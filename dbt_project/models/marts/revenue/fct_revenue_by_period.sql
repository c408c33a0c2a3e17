{#-
  Revenue per account and billing period: gross_revenue is what the invoice bills (rated lines
  and late-usage adjustments) less credit notes issued against it; net_revenue is gross less
  coupons (discount_total is zero or negative). Prepaid credits drawn are a means of payment, not
  a discount: they do not reduce revenue (credits_applied shows them). Drafts are included with
  their status, so the open period shows revenue to date. Tax (on
  invoices and credit notes) is not revenue; amount_due includes it.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
),

credit_notes as (
    select invoice_id, sum(total - tax_total) as credited
    from {{ ref('fct_credit_notes') }}
    group by invoice_id
)

select
    invoices.invoice_id,
    invoices.invoice_number,
    invoices.status,
    invoices.account_id,
    invoices.account_name,
    invoices.period_start,
    invoices.period_end,
    invoices.currency,
    invoices.subtotal,
    invoices.discount_total,
    cast(coalesce(credit_notes.credited, 0) as {{ money_type() }}) as credit_notes_total,
    cast(invoices.subtotal - coalesce(credit_notes.credited, 0) as {{ money_type() }}) as gross_revenue,
    cast(invoices.subtotal + invoices.discount_total - coalesce(credit_notes.credited, 0)
        as {{ money_type() }}) as net_revenue,
    invoices.credits_applied,
    invoices.total as amount_due
from invoices
left join credit_notes on invoices.invoice_id = credit_notes.invoice_id
