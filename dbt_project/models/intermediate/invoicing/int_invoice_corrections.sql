{#-
  Late usage for final invoices. For every rated line of a final invoice: what rating says now,
  minus what the final invoice billed, minus corrections already booked (adjustment lines on later
  final invoices, credit note lines) = the correction still to book. A final invoice never changes;
  the rule (docs/decisions.md, "Late events"):
    positive  an `adjustment` line on the account's next invoice that is not final yet
              (pending while the account has none);
    negative  a credit note against the final invoice, issued at the next period close.
  A line rating has no more (or never billed) counts as 0 on that side.
-#}
with ledger as (
    select * from {{ ledger_lines() }}
),

final_invoices as (
    select distinct
        document_id as invoice_id,
        document_number,
        account_id,
        currency,
        minor_units,
        period_start,
        period_end
    from ledger
    where document_type = 'invoice'
),

billed as (
    select
        invoice_id,
        line_id,
        charge_id,
        meter_code,
        dimension_value,
        pricing_model,
        description,
        quantity,
        amount
    from ledger
    where document_type = 'invoice' and line_type not in {{ lifecycle_line_types() }}
),

rated_now as (
    select * from {{ ref('int_invoice_charge_lines') }}
    where invoice_id in (select invoice_id from final_invoices)
),

booked_corrections as (
    select
        corrects_line_id,
        sum(case when document_type = 'credit_note' then -amount else amount end) as amount
    from ledger
    where corrects_line_id is not null
    group by corrects_line_id
),

compared as (
    select
        coalesce(rated_now.invoice_id, billed.invoice_id) as invoice_id,
        coalesce(rated_now.invoice_line_id, billed.line_id) as line_id,
        coalesce(rated_now.charge_id, billed.charge_id) as charge_id,
        coalesce(rated_now.meter_code, billed.meter_code) as meter_code,
        coalesce(rated_now.dimension_value, billed.dimension_value) as dimension_value,
        coalesce(rated_now.pricing_model, billed.pricing_model) as pricing_model,
        coalesce(rated_now.description, billed.description) as charge_description,
        billed.quantity as billed_quantity,
        rated_now.quantity as rated_quantity,
        coalesce(billed.amount, 0) as billed_amount,
        coalesce(rated_now.amount, 0) as rated_amount
    from rated_now
    full outer join billed on rated_now.invoice_line_id = billed.line_id
)

select
    compared.line_id as corrects_line_id,
    compared.invoice_id as corrects_invoice_id,
    final_invoices.document_number as corrects_invoice_number,
    final_invoices.account_id,
    final_invoices.currency,
    final_invoices.minor_units,
    final_invoices.period_start,
    final_invoices.period_end,
    compared.charge_id,
    compared.meter_code,
    compared.dimension_value,
    compared.pricing_model,
    compared.charge_description,
    compared.billed_quantity,
    compared.rated_quantity,
    compared.billed_amount,
    compared.rated_amount,
    cast(coalesce(booked_corrections.amount, 0) as {{ money_type() }}) as booked_correction,
    cast(
        compared.rated_amount - compared.billed_amount - coalesce(booked_corrections.amount, 0)
    as {{ money_type() }}) as correction_amount,
    case
        when compared.rated_amount - compared.billed_amount - coalesce(booked_corrections.amount, 0) > 0
            then 'adjustment'
        else 'credit_note'
    end as correction_type
from compared
inner join final_invoices on compared.invoice_id = final_invoices.invoice_id
left join booked_corrections on compared.line_id = booked_corrections.corrects_line_id
where compared.rated_amount - compared.billed_amount - coalesce(booked_corrections.amount, 0) != 0
