-- Final invoice and credit note numbers run 1..n per issuer, document type and year, no gaps.
with documents as (
    select distinct issuer_id, document_type, number_year, number_seq, document_number
    from {{ ref('ledger_document_lines') }}
)

select issuer_id, document_type, number_year, count(*) as documents, max(number_seq) as last_seq,
       count(distinct document_number) as numbers
from documents
group by issuer_id, document_type, number_year
having count(*) != max(number_seq) or count(distinct number_seq) != count(*)
    or count(distinct document_number) != count(*)
