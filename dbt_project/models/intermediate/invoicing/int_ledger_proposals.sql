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
        lines.instrument_id,
        lines.base_amount,
        lines.rate_percent,
        lines.tax_code,
        drafts.customer_legal_name,
        drafts.customer_address,
        drafts.customer_country,
        drafts.customer_tax_id,
        drafts.payment_terms_days,
        drafts.due_on,
        drafts.tax_treatment,
        drafts.tax_note
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
    select
        document_id as invoice_id,
        max(issuer_id) as issuer_id,
        max(customer_legal_name) as customer_legal_name,
        max(customer_address) as customer_address,
        max(customer_country) as customer_country,
        max(customer_tax_id) as customer_tax_id,
        max(tax_treatment) as tax_treatment,
        max(tax_note) as tax_note,
        max(case when line_type != 'credit' then tax_code end) as tax_code,
        max(case when line_type = 'tax' then rate_percent end) as tax_rate_percent,
        max(case when line_type = 'tax' then description end) as tax_name
    from ledger
    where document_type = 'invoice'
    group by document_id
),

credits as (
    select
        corrections.*,
        final_invoices.issuer_id,
        final_invoices.customer_legal_name,
        final_invoices.customer_address,
        final_invoices.customer_country,
        final_invoices.customer_tax_id,
        final_invoices.tax_treatment,
        final_invoices.tax_note,
        final_invoices.tax_code,
        final_invoices.tax_rate_percent,
        final_invoices.tax_name,
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
        cast(null as {{ dbt.type_string() }}) as instrument_id,
        cast(null as {{ decimal_type() }}) as base_amount,
        cast(null as {{ decimal_type() }}) as rate_percent,
        tax_code,
        customer_legal_name,
        customer_address,
        customer_country,
        customer_tax_id,
        cast(null as integer) as payment_terms_days,
        cast(null as date) as due_on,
        tax_treatment,
        tax_note
    from credits
    inner join {{ ref('issuers') }} as issuers on credits.issuer_id = issuers.issuer_id
),

{#- A credit note credits the tax it corrects: at the credited invoice's frozen rate, on the
    credited amount, rounded once per credit note (the rule of int_invoice_taxes). -#}
credit_note_tax_lines as (
    select
        document_id,
        max(document_type) as document_type,
        max(issuer_id) as issuer_id,
        max(number_prefix) as number_prefix,
        max(invoice_id) as invoice_id,
        max(account_id) as account_id,
        max(currency) as currency,
        max(minor_units) as minor_units,
        max(period_start) as period_start,
        max(period_end) as period_end,
        max(plan_code) as plan_code,
        max(plan_version) as plan_version,
        max(issued_on) as issued_on,
        max(closes_at) as closes_at,
        max(reason) as reason,
        max(recalculated_at) as recalculated_at,
        {{ dbt.concat(["document_id", "':tax'"]) }} as line_id,
        max(line_number) + 1 as line_number,
        'tax' as line_type,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        cast(null as {{ dbt.type_string() }}) as meter_code,
        cast(null as {{ dbt.type_string() }}) as dimension_value,
        cast(null as {{ dbt.type_string() }}) as pricing_model,
        max(tax_name) as description,
        cast(null as {{ decimal_type() }}) as quantity,
        cast(null as {{ decimal_type() }}) as unit_price,
        {{ percent_of('sum(amount)', 'max(tax_rate_percent)') }} as amount_unrounded,
        {{ round_money(percent_of('sum(amount)', 'max(tax_rate_percent)'), 'max(minor_units)') }} as amount,
        {{ to_minor_units(round_money(percent_of('sum(amount)', 'max(tax_rate_percent)'), 'max(minor_units)'), 'max(minor_units)') }}
            as amount_minor,
        max(corrects_invoice_id) as corrects_invoice_id,
        cast(null as {{ dbt.type_string() }}) as corrects_line_id,
        cast(null as {{ dbt.type_string() }}) as instrument_id,
        cast(sum(amount) as {{ decimal_type() }}) as base_amount,
        max(tax_rate_percent) as rate_percent,
        max(tax_code) as tax_code,
        max(customer_legal_name) as customer_legal_name,
        max(customer_address) as customer_address,
        max(customer_country) as customer_country,
        max(customer_tax_id) as customer_tax_id,
        cast(null as integer) as payment_terms_days,
        cast(null as date) as due_on,
        max(tax_treatment) as tax_treatment,
        max(tax_note) as tax_note
    from (
        select credit_note_lines.*, credits.tax_rate_percent, credits.tax_name
        from credit_note_lines
        inner join credits on credit_note_lines.corrects_line_id = credits.corrects_line_id
    ) as credited
    where tax_rate_percent > 0
    group by document_id
),

proposals as (
    select * from invoice_lines
    union all
    select * from credit_note_lines
    union all
    select * from credit_note_tax_lines
)

select
    {% for name, type in ledger_line_columns() if name != 'ledger_version' -%}
    cast(proposals.{{ name }} as {{ type }}) as {{ name }},
    {% endfor -%}
    ledger_version.ledger_version
from proposals
cross join ledger_version
