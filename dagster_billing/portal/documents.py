"""Where the portal finds a document's PDF: the ONE place that knows the export layout.

The close job writes a PDF per final invoice (defs/invoicing/documents.py, pdf_path:
exports/pdf/<YYYY-MM of the period>/<invoice number>.pdf) and, with the finance documents of
issue 22, per credit note (exports/pdf/credit_notes/<YYYY-MM issued>/<credit note number>.pdf).
Final documents never change and are on disk before the run that booked them publishes its
snapshot, so a final invoice the portal shows has its PDF. Drafts have none (their lines are on
the page and in the CSV). The path comes from the snapshot's row, never from the URL.
"""

from __future__ import annotations

from pathlib import Path


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def invoice_pdf(exports_dir: Path, invoice: dict) -> Path | None:
    """The final invoice's PDF, or None (a draft, or not rendered)."""
    if invoice["status"] != "final" or not invoice["invoice_number"]:
        return None
    period = invoice["period_start"].strftime("%Y-%m")
    return _existing(exports_dir / "pdf" / period / f"{invoice['invoice_number']}.pdf")


def credit_note_pdf(exports_dir: Path, note: dict) -> Path | None:
    """The credit note's PDF, or None (none rendered)."""
    if not note["credit_note_number"]:
        return None
    month = note["issued_on"].strftime("%Y-%m")
    folder = exports_dir / "pdf" / "credit_notes" / month
    return _existing(folder / f"{note['credit_note_number']}.pdf")
