{{ config(meta={"dagster": {"ref": {"name": "fct_receivables_aging"}}}) }}
-- The buckets add up to the total, and the total to what fct_invoice_payments says is outstanding.
with payments as (
    select account_id, currency, sum(outstanding) as outstanding
    from {{ ref('fct_invoice_payments') }}
    where outstanding > 0
    group by account_id, currency
)

select aging.account_id, aging.currency, aging.total_outstanding, payments.outstanding
from {{ ref('fct_receivables_aging') }} as aging
full outer join payments
    on aging.account_id = payments.account_id and aging.currency = payments.currency
where aging.total_outstanding is null
   or payments.outstanding is null
   or aging.total_outstanding != payments.outstanding
   or aging.total_outstanding != aging.current_amount + aging.past_due_1_30 + aging.past_due_31_60
        + aging.past_due_61_90 + aging.past_due_over_90
