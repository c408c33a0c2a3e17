"""Where the portal finds a document's PDF: the close job's files, through lib.documents.

The close job renders a PDF per final invoice and per credit note (`exports/pdf/<YYYY-MM of the
period>/<number>.pdf`, `exports/pdf/credit_notes/<YYYY-MM issued>/<number>.pdf`), and never
again once it exists. It renders them after the run has published its snapshot, so a final
document the portal shows may have no PDF for a few seconds: the link appears when the file does.
Drafts have none (their lines are on the page and in the CSV). The path comes from the snapshot's
row, never from the URL.
"""

from __future__ import annotations

from pathlib import Path

from dagster_billing.lib.documents import document_path


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def invoice_pdf(exports_dir: Path, invoice: dict) -> Path | None:
    """The final invoice's PDF, or None (a draft, or not rendered yet)."""
    if invoice["status"] != "final" or not invoice["invoice_number"]:
        return None
    # The fields of lib.documents.invoice_context that name its file.
    where = {
        "kind": "invoice",
        "folder": invoice["period_start"].strftime("%Y-%m"),
        "file_name": invoice["invoice_number"],
    }
    return _existing(document_path(exports_dir, where))


def credit_note_pdf(exports_dir: Path, note: dict) -> Path | None:
    """The credit note's PDF, or None (not rendered yet)."""
    where = {
        "kind": "credit_note",
        "folder": note["issued_on"].strftime("%Y-%m"),
        "file_name": note["credit_note_number"],
    }
    return _existing(document_path(exports_dir, where))
