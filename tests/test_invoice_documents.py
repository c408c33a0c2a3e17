"""Invoice PDFs: itemized, readable, and byte-identical for the same invoice."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

from pypdf import PdfReader

from dagster_billing.defs.invoicing.documents import invoice_context, render_invoice_pdf

D = Decimal
INVOICE = {
    "invoice_id": "inv-acct_tokyo-2026-01-01",
    "invoice_number": "JP-2026-0007",
    "status": "final",
    "issuer_id": "billing_kk",
    "account_id": "acct_tokyo",
    "account_name": "Tokyo K.K.",
    "period_start": date(2026, 1, 1),
    "period_end": date(2026, 2, 1),
    "plan_code": "tokyo_jpy_2026",
    "plan_version": 1,
    "currency": "JPY",
    "minor_units": 0,
    "line_count": 3,
    "subtotal": D("1280"),
    "discount_total": D("0"),
    "credits_applied": D("500"),
    "total": D("780"),
    "total_minor": 780,
    "issued_on": date(2026, 2, 4),
    "closes_at": datetime(2026, 2, 4),
    "finalized_at": datetime(2026, 2, 4, 1),
    "recalculated_at": datetime(2026, 1, 31, 23),
    "cycle_elapsed_percent": D("100.0"),
    "estimated_period_charges": D("1280"),
}
LINES = [
    {
        "invoice_line_id": "l1",
        "line_number": 1,
        "line_type": "charge",
        "description": "API calls",
        "meter_code": "api.requests",
        "dimension_value": "*",
        "quantity": D("1200000"),
        "unit_price": None,
        "amount": D("1280"),
    },
    {
        "invoice_line_id": "l2",
        "line_number": 2,
        "line_type": "credit",
        "description": "Prepaid credits",
        "meter_code": None,
        "dimension_value": None,
        "quantity": None,
        "unit_price": None,
        "amount": D("-500"),
    },
]
TIERS = [
    {
        "invoice_line_id": "l1",
        "tier_number": 1,
        "lower_bound": D("0"),
        "upper_bound": D("1000000"),
        "unit_price": D("0.001"),
        "tier_quantity": D("1000000"),
        "flat_fee_charged": D("0"),
        "amount_unrounded": D("1000"),
    },
    {
        "invoice_line_id": "l1",
        "tier_number": 2,
        "lower_bound": D("1000000"),
        "upper_bound": None,
        "unit_price": D("0.0014"),
        "tier_quantity": D("200000"),
        "flat_fee_charged": D("0"),
        "amount_unrounded": D("280"),
    },
]
ISSUER = {
    "legal_name": "Usage Billing K.K.",
    "address_line": "1-1 Marunouchi; Tokyo",
    "tax_id": "JP-T1",
}


def _text(pdf: bytes) -> str:
    """The PDF's text with whitespace (including line wraps) collapsed to single spaces."""
    return " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )


def test_the_pdf_lists_lines_tiers_credits_and_totals():
    text = _text(render_invoice_pdf(invoice_context(INVOICE, LINES, TIERS, ISSUER)))
    for expected in (
        "Invoice JP-2026-0007",
        "Usage Billing K.K.",
        "Tokyo K.K.",
        "Billing period: 2026-01-01 to 2026-01-31",
        "Tier 1: 0 to 1,000,000",
        "Tier 2: 1,000,000 to unbounded",
        "1,200,000",
        "Prepaid credits",
        "-500",
        "Total due",
        "780 JPY",
    ):
        assert expected in text, expected


def test_the_same_invoice_renders_to_the_same_bytes():
    context = invoice_context(INVOICE, LINES, TIERS, ISSUER)
    first = render_invoice_pdf(context)
    assert render_invoice_pdf(invoice_context(INVOICE, LINES, TIERS, ISSUER)) == first
    changed = invoice_context({**INVOICE, "total": D("781")}, LINES, TIERS, ISSUER)
    assert render_invoice_pdf(changed) != first


def test_a_draft_says_so_with_its_run_rate():
    draft = {
        **INVOICE,
        "status": "draft",
        "invoice_number": None,
        "issued_on": None,
        "cycle_elapsed_percent": D("48.3"),
        "estimated_period_charges": D("2650"),
    }
    text = _text(render_invoice_pdf(invoice_context(draft, LINES, TIERS, ISSUER)))
    assert "DRAFT invoice" in text
    assert "48.3 % of the period; run-rate 2650 JPY" in text
