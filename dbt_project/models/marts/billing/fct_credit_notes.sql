{#-
  Issued credit notes (immutable, from the ledger): each credits a final invoice for late usage
  that lowered what it should have billed. total is the (positive) amount credited, tax
  included (tax_total: tax credited at the invoice's frozen rate). The NetSuite
  credit-memo sync reads this table and fct_credit_note_lines.
-#}
with lines as (
    select * from {{ ledger_lines() }}
    where document_type = 'credit_note'
),

invoices as (
    select distinct document_id as invoice_id, document_number as invoice_number
    from {{ ledger_lines() }}
    where document_type = 'invoice'
)

select
    lines.document_id as credit_note_id,
    max(lines.document_number) as credit_note_number,
    lines.invoice_id,
    max(invoices.invoice_number) as invoice_number,
    max(lines.issuer_id) as issuer_id,
    max(lines.account_id) as account_id,
    max(lines.currency) as currency,
    cast(max(lines.minor_units) as integer) as minor_units,
    max(lines.period_start) as period_start,
    max(lines.period_end) as period_end,
    max(lines.issued_on) as issued_on,
    max(lines.reason) as reason,
    count(*) as line_count,
    cast(sum(lines.amount) as {{ money_type() }}) as total,
    cast(sum(lines.amount_minor) as bigint) as total_minor,
    max(lines.finalized_at) as finalized_at,
    cast(sum(case when lines.line_type = 'tax' then lines.amount else 0 end) as {{ money_type() }})
        as tax_total,
    max(lines.customer_legal_name) as customer_legal_name,
    max(lines.customer_address) as customer_address,
    max(lines.customer_country) as customer_country,
    max(lines.customer_tax_id) as customer_tax_id,
    max(lines.tax_code) as tax_code,
    max(lines.tax_treatment) as tax_treatment,
    max(lines.tax_note) as tax_note
from lines
left join invoices on lines.invoice_id = invoices.invoice_id
group by lines.document_id, lines.invoice_id
