"""Invoice and credit-note PDFs: pdf/<YYYY-MM>/<invoice number>.pdf per final invoice and
pdf/credit_notes/<YYYY-MM issued>/<credit note number>.pdf per issued credit note. What a
document prints and how it is rendered (Typst) is dagster_billing/lib/documents.py; this module
reads the marts and decides what to render: only documents not on disk yet (final documents never
change), in two worker processes when there are many."""

from collections import defaultdict

import dagster as dg
import duckdb
from pydantic import Field

from dagster_billing.defs import groups
from dagster_billing.defs.invoicing.exports import (
    CREDIT_NOTE_LINES_KEY,
    CREDIT_NOTES_KEY,
    INVOICES_KEY,
    LINES_KEY,
)
from dagster_billing.defs.invoicing.queries import (
    fetch_credit_note_lines,
    fetch_credit_notes,
    fetch_invoice_line_tiers,
    fetch_invoice_lines,
    fetch_invoices,
    fetch_issuers,
)
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.documents import (
    credit_note_context,
    document_path,
    invoice_context,
    render_many,
)

TIERS_KEY = dg.AssetKey(["billing", "fct_invoice_line_tiers"])
PDF_KEY = dg.AssetKey(["exports", "invoice_pdf"])


def _grouped(rows: list[dict], key: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


def load_invoice_contexts(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params: list | None = None
) -> list[dict]:
    invoices = fetch_invoices(connection, where, params)
    ids = [invoice["invoice_id"] for invoice in invoices]
    if not ids:
        return []
    in_ids = "invoice_id in (select unnest(?))"
    lines = _grouped(fetch_invoice_lines(connection, in_ids, [ids]), "invoice_id")
    tiers = _grouped(fetch_invoice_line_tiers(connection, in_ids, [ids]), "invoice_id")
    issuers = fetch_issuers(connection)
    return [
        invoice_context(
            invoice,
            lines[invoice["invoice_id"]],
            tiers[invoice["invoice_id"]],
            issuers[invoice["issuer_id"]],
        )
        for invoice in invoices
    ]


def load_credit_note_contexts(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params: list | None = None
) -> list[dict]:
    notes = fetch_credit_notes(connection, where, params)
    ids = [note["credit_note_id"] for note in notes]
    if not ids:
        return []
    lines = _grouped(
        fetch_credit_note_lines(connection, "credit_note_id in (select unnest(?))", [ids]),
        "credit_note_id",
    )
    issuers = fetch_issuers(connection)
    return [
        credit_note_context(note, lines[note["credit_note_id"]], issuers[note["issuer_id"]])
        for note in notes
    ]


class PdfConfig(dg.Config):
    processes: int = Field(default=2, description="Worker processes rendering PDFs.")


@dg.asset(
    key=PDF_KEY,
    deps=[INVOICES_KEY, LINES_KEY, TIERS_KEY, CREDIT_NOTES_KEY, CREDIT_NOTE_LINES_KEY],
    group_name=groups.EXPORTS,
    kinds={"pdf"},
    pool=DUCKDB_POOL,
)
def invoice_pdfs(
    context: dg.AssetExecutionContext, config: PdfConfig, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """A PDF per final invoice (issuer and customer, due date and terms, lines with quantity x
    unit price or rate x basis, tax, how to pay) and per issued credit note (the invoice it
    corrects). Final documents never change, so a PDF already on disk is kept; drafts are
    rendered on demand (`billing invoice-pdf`)."""
    with warehouse.connect(read_only=True) as connection:
        documents = load_invoice_contexts(connection, "status = 'final'")
        documents += load_credit_note_contexts(connection)
    todo = [
        (path, document)
        for document in documents
        if not (path := document_path(warehouse.exports_dir, document)).exists()
    ]
    written = render_many(todo, processes=config.processes)
    context.log.info(f"rendered {len(written)} new PDFs of {len(documents)} final documents")
    return dg.MaterializeResult(
        metadata={
            "final_documents": dg.MetadataValue.int(len(documents)),
            "rendered": dg.MetadataValue.int(len(written)),
            "directory": dg.MetadataValue.path(str(warehouse.exports_dir / "pdf")),
        }
    )
