{#- Lines of issued credit notes: the corrected invoice line and the amount credited (positive). -#}
select
    line_id as credit_note_line_id,
    document_id as credit_note_id,
    document_number as credit_note_number,
    line_number,
    line_type,
    invoice_id,
    corrects_line_id,
    account_id,
    currency,
    minor_units,
    charge_id,
    meter_code,
    dimension_value,
    description,
    amount,
    amount_minor,
    base_amount,
    rate_percent,
    tax_code
from {{ ledger_lines() }}
where document_type = 'credit_note'
