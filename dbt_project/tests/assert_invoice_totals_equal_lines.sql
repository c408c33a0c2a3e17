{{ config(meta={"dagster": {"ref": {"name": "fct_invoices"}}}) }}
-- Every invoice total equals the sum of its rounded lines, to the minor unit.
select invoices.invoice_id, invoices.total, invoices.total_minor, lines.line_sum, lines.line_sum_minor
from {{ ref('fct_invoices') }} as invoices
left join (
    select invoice_id, sum(amount) as line_sum, sum(amount_minor) as line_sum_minor
    from {{ ref('fct_invoice_lines') }}
    group by invoice_id
) as lines on invoices.invoice_id = lines.invoice_id
where lines.line_sum is null
   or invoices.total != lines.line_sum
   or invoices.total_minor != lines.line_sum_minor
