{{ config(meta={"dagster": {"ref": {"name": "fct_invoices"}}}) }}
-- Coupons and credits never take an invoice below zero (they draw at most what is owed).
select invoice_id, subtotal, discount_total, credits_applied, total
from {{ ref('fct_invoices') }}
where subtotal >= 0 and total < 0
