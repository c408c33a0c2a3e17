{#-
  One invoice per account and billing period. `draft` while the period is open (recalculated
  every run, with a run-rate estimate), `final` once booked in the ledger: numbered, immutable.
  total = subtotal (rated lines and adjustments) + discount_total (coupons, negative)
  + tax_total - credits_applied (prepaid credits drawn) = the sum of the invoice's lines.
  Customer details, payment terms, due date and tax treatment of a final invoice are the ones
  frozen in the ledger; invoices booked before the ledger had them (terms_frozen false) show the
  current reference data instead (docs/finance.md).
-#}
with final_lines as (
    select * from {{ ledger_lines() }}
    where document_type = 'invoice'
),

finals as (
    select
        document_id as invoice_id,
        max(document_number) as invoice_number,
        'final' as status,
        max(issuer_id) as issuer_id,
        max(account_id) as account_id,
        max(period_start) as period_start,
        max(period_end) as period_end,
        max(plan_code) as plan_code,
        max(plan_version) as plan_version,
        max(currency) as currency,
        max(minor_units) as minor_units,
        count(*) as line_count,
        sum(case when line_type not in {{ non_gross_line_types() }} then amount else 0 end) as subtotal,
        sum(case when line_type = 'coupon' then amount else 0 end) as discount_total,
        sum(case when line_type = 'tax' then amount else 0 end) as tax_total,
        -sum(case when line_type = 'credit' then amount else 0 end) as credits_applied,
        sum(amount) as total,
        sum(amount_minor) as total_minor,
        max(issued_on) as issued_on,
        max(closes_at) as closes_at,
        max(finalized_at) as finalized_at,
        max(recalculated_at) as recalculated_at,
        max(customer_legal_name) as customer_legal_name,
        max(customer_address) as customer_address,
        max(customer_country) as customer_country,
        max(customer_tax_id) as customer_tax_id,
        max(payment_terms_days) as payment_terms_days,
        max(due_on) as due_on,
        max(tax_code) as tax_code,
        max(tax_treatment) as tax_treatment,
        max(tax_note) as tax_note
    from final_lines
    group by document_id
),

drafts as (
    select * from {{ ref('int_invoice_drafts') }}
    where invoice_id not in (select invoice_id from finals)
),

invoices as (
    select
        invoice_id, invoice_number, status, issuer_id, account_id, period_start, period_end,
        plan_code, plan_version, currency, minor_units, line_count, subtotal, discount_total,
        tax_total, credits_applied, total, total_minor, issued_on, closes_at, finalized_at,
        recalculated_at,
        cast(100 as decimal(5, 1)) as cycle_elapsed_percent,
        subtotal as estimated_period_charges,
        customer_legal_name, customer_address, customer_country, customer_tax_id,
        payment_terms_days, due_on, tax_code, tax_treatment, tax_note,
        due_on is not null as terms_frozen
    from finals

    union all

    select
        invoice_id,
        cast(null as {{ dbt.type_string() }}) as invoice_number,
        'draft' as status,
        issuer_id, account_id, period_start, period_end, plan_code, plan_version, currency,
        minor_units, line_count, subtotal, discount_total, tax_total, credits_applied, total,
        total_minor,
        cast(null as date) as issued_on,
        closes_at,
        cast(null as timestamp) as finalized_at,
        recalculated_at,
        cycle_elapsed_percent,
        estimated_period_charges,
        customer_legal_name, customer_address, customer_country, customer_tax_id,
        payment_terms_days, due_on, tax_code, tax_treatment, tax_note,
        false as terms_frozen
    from drafts
)

select
    invoices.invoice_id,
    invoices.invoice_number,
    invoices.status,
    invoices.issuer_id,
    invoices.account_id,
    accounts.account_name,
    invoices.period_start,
    invoices.period_end,
    invoices.plan_code,
    cast(invoices.plan_version as integer) as plan_version,
    invoices.currency,
    cast(invoices.minor_units as integer) as minor_units,
    cast(invoices.line_count as bigint) as line_count,
    cast(invoices.subtotal as {{ money_type() }}) as subtotal,
    cast(invoices.discount_total as {{ money_type() }}) as discount_total,
    cast(invoices.tax_total as {{ money_type() }}) as tax_total,
    cast(invoices.credits_applied as {{ money_type() }}) as credits_applied,
    cast(invoices.total as {{ money_type() }}) as total,
    cast(invoices.total_minor as bigint) as total_minor,
    invoices.issued_on,
    invoices.closes_at,
    invoices.finalized_at,
    invoices.recalculated_at,
    invoices.cycle_elapsed_percent,
    cast(invoices.estimated_period_charges as {{ money_type() }}) as estimated_period_charges,
    coalesce(invoices.customer_legal_name, parties.customer_legal_name, accounts.account_name)
        as customer_legal_name,
    case when invoices.terms_frozen then invoices.customer_address else coalesce(invoices.customer_address, parties.customer_address) end
        as customer_address,
    coalesce(invoices.customer_country, parties.customer_country) as customer_country,
    case when invoices.terms_frozen then invoices.customer_tax_id else coalesce(invoices.customer_tax_id, parties.customer_tax_id) end
        as customer_tax_id,
    cast(coalesce(invoices.payment_terms_days, parties.payment_terms_days) as integer)
        as payment_terms_days,
    cast(coalesce(
        invoices.due_on,
        {{ dbt.dateadd('day', 'parties.payment_terms_days', 'invoices.issued_on') }}
    ) as date) as due_on,
    invoices.tax_code,
    invoices.tax_treatment,
    invoices.tax_note,
    invoices.terms_frozen
from invoices
-- A final invoice stays even if its account leaves the reference data (the relationship test says so).
left join {{ ref('accounts') }} as accounts on invoices.account_id = accounts.account_id
left join {{ ref('int_invoice_parties') }} as parties on invoices.account_id = parties.account_id
