{#- Billing periods whose invoice is not final yet (rating's periods minus the ledger's invoices). -#}
select periods.*
from {{ ref('int_billing_periods') }} as periods
where periods.invoice_id not in (
    select document_id from {{ ledger_lines() }} where document_type = 'invoice'
)
