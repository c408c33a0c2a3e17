{#-
  Accounts receivable aging at the run's clock: per account and currency, what final invoices
  still owe (fct_invoice_payments.outstanding), by days past their due date. Accounts that owe
  nothing have no row.
-#}
with open_items as (
    select * from {{ ref('fct_invoice_payments') }}
    where outstanding > 0
)

select
    max(as_of_date) as as_of_date,
    account_id,
    currency,
    count(*) as open_invoices,
    cast(sum(case when aging_bucket = 'current' then outstanding else 0 end) as {{ money_type() }})
        as current_amount,
    cast(sum(case when aging_bucket = '1-30' then outstanding else 0 end) as {{ money_type() }})
        as past_due_1_30,
    cast(sum(case when aging_bucket = '31-60' then outstanding else 0 end) as {{ money_type() }})
        as past_due_31_60,
    cast(sum(case when aging_bucket = '61-90' then outstanding else 0 end) as {{ money_type() }})
        as past_due_61_90,
    cast(sum(case when aging_bucket = '90+' then outstanding else 0 end) as {{ money_type() }})
        as past_due_over_90,
    cast(sum(outstanding) as {{ money_type() }}) as total_outstanding,
    max(days_past_due) as oldest_days_past_due
from open_items
group by account_id, currency
