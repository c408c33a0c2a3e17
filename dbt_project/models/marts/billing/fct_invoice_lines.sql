{#-
  Invoice lines as printed, final and draft: the ledger's lines for final invoices (frozen), and
  the lines of open invoices as recalculated this run. Rating's lines (line_type charge and the
  other rated types), late-usage adjustments, coupons, tax and prepaid credits; each amount rounded
  once; an invoice's lines sum to its total. Every export and sync reads this table.
-#}
with final_lines as (
    select
        line_id as invoice_line_id,
        document_id as invoice_id,
        document_number as invoice_number,
        'final' as status,
        line_number, line_type, account_id, period_start, period_end, currency, minor_units,
        charge_id, meter_code, dimension_value, pricing_model, description, quantity, unit_price,
        amount_unrounded, amount, amount_minor, corrects_invoice_id, corrects_line_id,
        instrument_id, base_amount, rate_percent, tax_code
    from {{ ledger_lines() }}
    where document_type = 'invoice'
),

draft_lines as (
    select
        invoice_line_id,
        invoice_id,
        cast(null as {{ dbt.type_string() }}) as invoice_number,
        'draft' as status,
        line_number, line_type, account_id, period_start, period_end, currency, minor_units,
        charge_id, meter_code, dimension_value, pricing_model, description, quantity, unit_price,
        amount_unrounded, amount, amount_minor, corrects_invoice_id, corrects_line_id,
        instrument_id, base_amount, rate_percent, tax_code
    from {{ ref('int_invoice_draft_lines') }}
    where invoice_id not in (select invoice_id from final_lines)
)

select * from final_lines
union all
select * from draft_lines
