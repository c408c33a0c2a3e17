{#-
  What the ledger would book, line by line, as of this run: every open invoice (booked once its
  period has closed, in the next close run) and a credit note per final invoice whose rated lines
  went down (int_invoice_corrections), with an id that counts the invoice's earlier credit notes.
  ledger_version is the number of documents the ledger held when this was computed: the ledger
  books proposals only while that is still true (ledger_document_lines reads this table as the
  previous run left it).
-#}
with ledger as (
    select * from {{ ledger_lines() }}
),

ledger_version as (
    select count(distinct document_id) as ledger_version from ledger
),

drafts as (
    select * from {{ ref('int_invoice_drafts') }}
),

invoice_lines as (
    select
        drafts.invoice_id as document_id,
        'invoice' as document_type,
        drafts.issuer_id,
        coalesce(issuers.invoice_number_prefix, '') as number_prefix,
        drafts.invoice_id,
        drafts.account_id,
        drafts.currency,
        drafts.minor_units,
        drafts.period_start,
        drafts.period_end,
        drafts.plan_code,
        drafts.plan_version,
        cast(drafts.closes_at as date) as issued_on,
        drafts.closes_at,
        cast(null as {{ dbt.type_string() }}) as reason,
        drafts.recalculated_at,
        lines.invoice_line_id as line_id,
        lines.line_number,
        lines.line_type,
        lines.charge_id,
        lines.meter_code,
        lines.dimension_value,
        lines.pricing_model,
        lines.description,
        lines.quantity,
        lines.unit_price,
        lines.amount_unrounded,
        lines.amount,
        lines.amount_minor,
        lines.corrects_invoice_id,
        lines.corrects_line_id,
        lines.instrument_id
    from drafts
    inner join {{ ref('int_invoice_draft_lines') }} as lines on drafts.invoice_id = lines.invoice_id
    inner join {{ ref('issuers') }} as issuers on drafts.issuer_id = issuers.issuer_id
),

credit_note_counts as (
    select invoice_id, count(distinct document_id) as credit_notes
    from ledger
    where document_type = 'credit_note'
    group by invoice_id
),

final_invoices as (
    select distinct document_id as invoice_id, issuer_id, plan_code, plan_version
    from ledger
    where document_type = 'invoice'
),

credits as (
    select
        corrections.*,
        final_invoices.issuer_id,
        {{ dbt.concat([
            "'cn-'", "corrections.corrects_invoice_id", "'-'",
            dbt.cast("coalesce(credit_note_counts.credit_notes, 0) + 1", dbt.type_string())
        ]) }} as credit_note_id
    from {{ ref('int_invoice_corrections') }} as corrections
    inner join final_invoices on corrections.corrects_invoice_id = final_invoices.invoice_id
    left join credit_note_counts on corrections.corrects_invoice_id = credit_note_counts.invoice_id
    where corrections.correction_type = 'credit_note'
),

credit_note_lines as (
    select
        credit_note_id as document_id,
        'credit_note' as document_type,
        credits.issuer_id,
        coalesce(issuers.credit_note_number_prefix, '') as number_prefix,
        corrects_invoice_id as invoice_id,
        account_id,
        currency,
        minor_units,
        period_start,
        period_end,
        cast(null as {{ dbt.type_string() }}) as plan_code,
        cast(null as integer) as plan_version,
        cast({{ as_of_timestamp() }} as date) as issued_on,
        cast(null as timestamp) as closes_at,
        'late_usage_correction' as reason,
        {{ as_of_timestamp() }} as recalculated_at,
        {{ dbt.concat(["credit_note_id", "':'", "corrects_line_id"]) }} as line_id,
        row_number() over (partition by credit_note_id order by charge_id, corrects_line_id) as line_number,
        'correction' as line_type,
        charge_id,
        meter_code,
        dimension_value,
        pricing_model,
        {{ dbt.concat(["'Late usage correction: '", "charge_description"]) }} as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        cast(-correction_amount as {{ decimal_type() }}) as amount_unrounded,
        cast(-correction_amount as {{ money_type() }}) as amount,
        {{ to_minor_units('-correction_amount', 'minor_units') }} as amount_minor,
        corrects_invoice_id,
        corrects_line_id,
        cast(null as {{ dbt.type_string() }}) as instrument_id
    from credits
    inner join {{ ref('issuers') }} as issuers on credits.issuer_id = issuers.issuer_id
),

proposals as (
    select * from invoice_lines
    union all
    select * from credit_note_lines
)

select
    {% for name, type in ledger_line_columns() if name != 'ledger_version' -%}
    cast(proposals.{{ name }} as {{ type }}) as {{ name }},
    {% endfor -%}
    ledger_version.ledger_version
from proposals
cross join ledger_version
