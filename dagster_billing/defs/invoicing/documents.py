"""Invoice PDFs: an itemized document per invoice (lines, tier breakdown, coupons, credits,
totals), rendered from a Jinja2 HTML template by WeasyPrint. Every figure is a string formatted
from what dbt computed; nothing is re-derived. The same invoice always renders to the same bytes:
the PDF dates come from the invoice (dcterms metadata) and SOURCE_DATE_EPOCH (font subsets)."""

import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import jinja2

from dagster_billing.defs import groups
from dagster_billing.defs.invoicing.exports import INVOICES_KEY, LINES_KEY
from dagster_billing.defs.invoicing.queries import (
    fetch_invoice_line_tiers,
    fetch_invoice_lines,
    fetch_invoices,
    fetch_rows,
)
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.money import format_decimal, format_money

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)
TIERS_KEY = dg.AssetKey(["billing", "fct_invoice_line_tiers"])
PDF_KEY = dg.AssetKey(["exports", "invoice_pdf"])
ISSUER_COLUMNS = ("issuer_id", "legal_name", "address_line", "tax_id")


def _money(amount: Decimal, minor_units: int) -> str:
    return format_money(amount, minor_units)


def _quantity(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format_decimal(value)
    whole, dot, fraction = text.partition(".")
    return f"{int(whole):,}{dot}{fraction}"


def invoice_context(invoice: dict, lines: list[dict], tiers: list[dict], issuer: dict) -> dict:
    """What the template prints, every amount an exact string of the dbt-computed value."""
    minor = invoice["minor_units"]
    tiers_by_line: dict[str, list[dict]] = defaultdict(list)
    for tier in tiers:
        tiers_by_line[tier["invoice_line_id"]].append(
            {
                "tier_number": tier["tier_number"],
                "lower_bound": _quantity(tier["lower_bound"]),
                "upper_bound": _quantity(tier["upper_bound"]) or "unbounded",
                "unit_price": format_decimal(tier["unit_price"]),
                "tier_quantity": _quantity(tier["tier_quantity"]),
                "flat_fee_charged": format_decimal(tier["flat_fee_charged"])
                if tier["flat_fee_charged"]
                else "",
                "amount_unrounded": format_decimal(tier["amount_unrounded"]),
            }
        )
    credits = invoice["credits_applied"]
    return {
        "title": f"Invoice {invoice['invoice_number'] or invoice['invoice_id']}",
        "document_date": _document_date(invoice).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issuer": {
            "legal_name": issuer["legal_name"],
            "address_lines": [part.strip() for part in (issuer["address_line"] or "").split(";")],
            "tax_id": issuer["tax_id"] or "",
        },
        "invoice": {
            **invoice,
            "period_last_day": invoice["period_end"] - timedelta(days=1),
            "subtotal": _money(invoice["subtotal"], minor),
            "discount_total": _money(invoice["discount_total"], minor),
            "credits_applied": _money(credits, minor),
            "total": _money(invoice["total"], minor),
            "estimated_period_charges": _money(invoice["estimated_period_charges"], minor),
        },
        "lines": [
            {
                **line,
                "quantity": _quantity(line["quantity"]),
                "unit_price": format_decimal(line["unit_price"]),
                "amount": _money(line["amount"], minor),
                "tiers": tiers_by_line.get(line["invoice_line_id"], [])
                if len(tiers_by_line.get(line["invoice_line_id"], [])) > 1
                else [],
            }
            for line in lines
        ],
    }


def _document_date(invoice: dict) -> datetime:
    """The date printed into the PDF metadata: issue day of a final invoice, else recalculation."""
    if invoice["issued_on"] is not None:
        day: date = invoice["issued_on"]
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return invoice["recalculated_at"].replace(tzinfo=UTC)


@contextmanager
def _source_date_epoch(moment: datetime) -> Iterator[None]:
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(moment.timestamp()))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def render_invoice_pdf(context: dict) -> bytes:
    """The invoice as PDF bytes, identical for identical context."""
    import weasyprint

    html = TEMPLATES.get_template("invoice.html.j2").render(**context)
    moment = datetime.strptime(context["document_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    with _source_date_epoch(moment):
        return weasyprint.HTML(string=html).write_pdf()


def load_invoice_contexts(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params: list | None = None
) -> list[dict]:
    invoices = fetch_invoices(connection, where, params)
    ids = [invoice["invoice_id"] for invoice in invoices]
    if not ids:
        return []
    lines_by_invoice: dict[str, list[dict]] = defaultdict(list)
    for line in fetch_invoice_lines(connection, "invoice_id in (select unnest(?))", [ids]):
        lines_by_invoice[line["invoice_id"]].append(line)
    tiers_by_invoice: dict[str, list[dict]] = defaultdict(list)
    for tier in fetch_invoice_line_tiers(connection, "invoice_id in (select unnest(?))", [ids]):
        tiers_by_invoice[tier["invoice_id"]].append(tier)
    issuers = {
        row["issuer_id"]: row
        for row in fetch_rows(connection, "reference.issuers", ISSUER_COLUMNS, "issuer_id")
    }
    return [
        invoice_context(
            invoice,
            lines_by_invoice[invoice["invoice_id"]],
            tiers_by_invoice[invoice["invoice_id"]],
            issuers[invoice["issuer_id"]],
        )
        for invoice in invoices
    ]


def pdf_path(exports_dir: Path, context: dict) -> Path:
    invoice = context["invoice"]
    name = invoice["invoice_number"] or invoice["invoice_id"]
    return exports_dir / "pdf" / invoice["period_start"].strftime("%Y-%m") / f"{name}.pdf"


@dg.asset(
    key=PDF_KEY,
    deps=[INVOICES_KEY, LINES_KEY, TIERS_KEY],
    group_name=groups.EXPORTS,
    kinds={"pdf"},
    pool=DUCKDB_POOL,
)
def invoice_pdfs(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """An itemized PDF per final invoice, pdf/<YYYY-MM>/<invoice number>.pdf. Final invoices never
    change, so a PDF already on disk is kept; drafts are rendered on demand (`billing invoice-pdf`)."""
    with warehouse.connect(read_only=True) as connection:
        contexts = load_invoice_contexts(connection, "status = 'final'")
    written = []
    for invoice in contexts:
        path = pdf_path(warehouse.exports_dir, invoice)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_invoice_pdf(invoice))
        written.append(path)
    context.log.info(f"rendered {len(written)} new PDFs of {len(contexts)} final invoices")
    return dg.MaterializeResult(
        metadata={
            "final_invoices": dg.MetadataValue.int(len(contexts)),
            "rendered": dg.MetadataValue.int(len(written)),
            "directory": dg.MetadataValue.path(str(warehouse.exports_dir / "pdf")),
        }
    )
