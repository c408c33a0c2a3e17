{#-
  THE LEDGER: every line of every final invoice and issued credit note, append-only. A row is
  written once and never updated or deleted; the model ignores --full-refresh (full_refresh:
  false in dbt_project.yml). What it books is what the previous run proposed
  (int_ledger_proposals, read as that run left it: the final invoice is the last draft), and
  only while the ledger still holds the documents the proposals were computed against.
  A run books when var finalize_periods_before is set (a Dagster monthly partition's end):
    - every proposed invoice whose period starts before it and has closed by as_of
      (period end + finalization_grace_days), numbered per issuer and year without gaps in
      booking order (issued_on, period, account): 2026-0001, 2026-0002, ...;
    - every proposed credit note (late usage that lowered a final invoice), numbered CN-2026-0001...
-#}
{#- New columns (a project upgrade) are added to an existing ledger; rows booked before stay as
    they were booked, with nulls in them (docs/finance.md, "Invoices booked before"). -#}
{{ config(on_schema_change='append_new_columns') }}

with proposals as (
    select * from {{ previous_run_relation('int_ledger_proposals', ledger_line_columns()) }} as proposals
),

{% if is_incremental() %}
booked as (
    select * from {{ this }}
),
{% else %}
booked as (
    select
        proposals.*,
        cast(null as {{ dbt.type_string() }}) as document_number,
        cast(null as integer) as number_year,
        cast(null as bigint) as number_seq,
        cast(null as timestamp) as finalized_at
    from proposals
    where 1 = 0
),
{% endif %}

ledger_version as (
    select count(distinct document_id) as ledger_version from booked
),

to_book as (
    select proposals.*
    from proposals
    cross join ledger_version
    where proposals.ledger_version = ledger_version.ledger_version
        and proposals.document_id not in (select document_id from booked)
        {% set finalize_periods_before = run_var('finalize_periods_before') %}
        {% if finalize_periods_before %}
        and (
            proposals.document_type = 'credit_note'
            or (
                proposals.period_start < cast('{{ finalize_periods_before }}' as timestamp)
                and proposals.closes_at <= {{ as_of_timestamp() }}
            )
        )
        {% else %}
        and 1 = 0
        {% endif %}
),

documents as (
    select distinct
        document_id,
        document_type,
        issuer_id,
        number_prefix,
        issued_on,
        period_start,
        account_id,
        cast(extract(year from issued_on) as integer) as number_year
    from to_book
),

last_numbers as (
    select issuer_id, document_type, number_year, max(number_seq) as last_seq
    from booked
    group by issuer_id, document_type, number_year
),

numbered as (
    select
        documents.*,
        coalesce(last_numbers.last_seq, 0) + row_number() over (
            partition by documents.issuer_id, documents.document_type, documents.number_year
            order by documents.issued_on, documents.period_start, documents.account_id,
                documents.document_id
        ) as number_seq
    from documents
    left join last_numbers
        on documents.issuer_id = last_numbers.issuer_id
        and documents.document_type = last_numbers.document_type
        and documents.number_year = last_numbers.number_year
)

select
    to_book.*,
    {{ document_number("numbered.number_prefix", "numbered.number_year", "numbered.number_seq") }}
        as document_number,
    cast(numbered.number_year as integer) as number_year,
    cast(numbered.number_seq as bigint) as number_seq,
    {{ as_of_timestamp() }} as finalized_at
from to_book
inner join numbered on to_book.document_id = numbered.document_id
