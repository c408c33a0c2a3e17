{{ config(meta={"dagster": {"ref": {"name": "fct_invoices"}}}) }}
-- total = subtotal + discounts + tax - prepaid credits, and every tax line is its rate times its
-- taxable amount, rounded once (round_money).
select invoice_id, 'totals' as failure
from {{ ref('fct_invoices') }}
where total != subtotal + discount_total + tax_total - credits_applied

union all

select invoice_id, 'tax line' as failure
from {{ ref('fct_invoice_lines') }}
where line_type = 'tax'
    and (
        base_amount is null
        or rate_percent is null
        or amount != {{ round_money(percent_of('base_amount', 'rate_percent'), 'minor_units') }}
    )
