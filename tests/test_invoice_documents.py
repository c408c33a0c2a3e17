"""Invoice and credit-note PDFs: every field an accountant reads is on the page (read back with
pypdf), amounts formatted with babel for the issuer's locale and currency, and the same
document always renders to the same bytes."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from dagster_billing.lib.documents import (
    credit_note_context,
    document_path,
    invoice_context,
    render_many,
    render_pdf,
)

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
    "line_count": 5,
    "subtotal": D("1780"),
    "discount_total": D("-178"),
    "tax_total": D("160"),
    "credits_applied": D("500"),
    "total": D("1262"),
    "total_minor": 1262,
    "issued_on": date(2026, 2, 4),
    "closes_at": datetime(2026, 2, 4),
    "finalized_at": datetime(2026, 2, 4, 1),
    "recalculated_at": datetime(2026, 1, 31, 23),
    "cycle_elapsed_percent": D("100.0"),
    "estimated_period_charges": D("1780"),
    "customer_legal_name": "Tokyo Widgets K.K.",
    "customer_address": "2-2 Otemachi; Chiyoda-ku, Tokyo 100-0004",
    "customer_country": "JP",
    "customer_tax_id": "T1234567890123",
    "payment_terms_days": 15,
    "due_on": date(2026, 2, 19),
    "tax_code": "JP-CT-10",
    "tax_treatment": "standard",
    "tax_note": None,
}
LINES = [
    {"invoice_line_id": "l1", "line_number": 1, "line_type": "charge",
     "description": "API calls", "meter_code": "api.requests", "dimension_value": "*",
     "quantity": D("1200000"), "unit_price": None, "base_amount": None, "rate_percent": None,
     "amount": D("1280")},
    {"invoice_line_id": "l2", "line_number": 2, "line_type": "charge",
     "description": "Builds", "meter_code": "builds.completed", "dimension_value": "*",
     "quantity": D("1000"), "unit_price": D("0.5000000000"), "base_amount": None,
     "rate_percent": None, "amount": D("500")},
    {"invoice_line_id": "l3", "line_number": 3, "line_type": "coupon",
     "description": "Welcome 10% off", "meter_code": None, "dimension_value": None,
     "quantity": None, "unit_price": None, "base_amount": D("1780"), "rate_percent": D("10"),
     "amount": D("-178")},
    {"invoice_line_id": "l4", "line_number": 4, "line_type": "tax",
     "description": "Consumption tax", "meter_code": None, "dimension_value": None,
     "quantity": None, "unit_price": None, "base_amount": D("1602"), "rate_percent": D("10"),
     "amount": D("160")},
    {"invoice_line_id": "l5", "line_number": 5, "line_type": "credit",
     "description": "Prepaid credits", "meter_code": None, "dimension_value": None,
     "quantity": None, "unit_price": None, "base_amount": None, "rate_percent": None,
     "amount": D("-500")},
]  # fmt: skip
TIERS = [
    {"invoice_line_id": "l1", "tier_number": 1, "lower_bound": D("0"),
     "upper_bound": D("1000000"), "unit_price": D("0.001"), "tier_quantity": D("1000000"),
     "flat_fee_charged": D("0"), "amount_unrounded": D("1000")},
    {"invoice_line_id": "l1", "tier_number": 2, "lower_bound": D("1000000"), "upper_bound": None,
     "unit_price": D("0.0014"), "tier_quantity": D("200000"), "flat_fee_charged": D("0"),
     "amount_unrounded": D("280")},
]  # fmt: skip
ISSUER = {
    "legal_name": "Usage Billing K.K.",
    "address_line": "1-1 Marunouchi; Tokyo",
    "tax_id": "JP-T1",
    "locale": "ja_JP",
    "payment_instructions": "Pay by bank transfer to Example Bank, account 0000000",
}
CREDIT_NOTE = {
    "credit_note_id": "cn-inv-acct_cobalt-2026-01-01-1",
    "credit_note_number": "CN-2026-0001",
    "invoice_id": "inv-acct_cobalt-2026-01-01",
    "invoice_number": "2026-0003",
    "issuer_id": "billing_co",
    "account_id": "acct_cobalt",
    "currency": "EUR",
    "minor_units": 2,
    "period_start": date(2026, 1, 1),
    "period_end": date(2026, 2, 1),
    "issued_on": date(2026, 2, 6),
    "reason": "late_usage_correction",
    "line_count": 2,
    "total": D("24.69"),
    "total_minor": 2469,
    "tax_total": D("3.94"),
    "customer_legal_name": "Cobalt Consumer GmbH",
    "customer_address": "Friedrichstrasse 10; 10117 Berlin",
    "customer_country": "DE",
    "customer_tax_id": None,
    "tax_code": "DE-VAT-19",
    "tax_treatment": "standard",
    "tax_note": None,
}
CREDIT_NOTE_LINES = [
    {"line_number": 1, "line_type": "correction", "description": "Late usage correction: Builds",
     "meter_code": "builds.completed", "dimension_value": "*", "base_amount": None,
     "rate_percent": None, "amount": D("20.75")},
    {"line_number": 2, "line_type": "tax", "description": "VAT", "meter_code": None,
     "dimension_value": None, "base_amount": D("20.75"), "rate_percent": D("19"),
     "amount": D("3.94")},
]  # fmt: skip
CO_ISSUER = {
    "legal_name": "Usage Billing Co.",
    "address_line": "1 Meter Street; Springfield",
    "tax_id": "US-00-0000000",
    "locale": "en_US",
    "payment_instructions": "ACH",
}


def _text(pdf: bytes) -> str:
    """The PDF's text with whitespace (including line wraps) collapsed to single spaces."""
    return " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )


def test_an_invoice_pdf_carries_every_field_an_accountant_reads():
    text = _text(render_pdf(invoice_context(INVOICE, LINES, TIERS, ISSUER)))
    for expected in (
        "Invoice JP-2026-0007",
        # Issuer: legal name, address, tax id.
        "Usage Billing K.K. 1-1 Marunouchi Tokyo Tax id JP-T1",
        # Customer: legal name, address, tax id, account.
        "Bill to Tokyo Widgets K.K. 2-2 Otemachi Chiyoda-ku, Tokyo 100-0004",
        "Tax id T1234567890123",
        "Account acct_tokyo",
        # Dates, terms, currency, plan, tax code.
        "Invoice number JP-2026-0007",
        "Billing period 2026-01-01 to 2026-01-31",
        "Issue date 2026-02-04",
        "Currency JPY",
        "Due date 2026-02-19",
        "Payment terms Net 15 days",
        "Tax JP-CT-10",
        # Lines: quantity x unit price (or tiers) = amount; money never in the quantity column.
        "1 API calls (api.requests) 1,200,000 ¥1,280",
        "Tier 1: 0 to 1,000,000 1,000,000 0.001 1,000",
        "Tier 2: 1,000,000 to unbounded 200,000 0.0014 280",
        "2 Builds (builds.completed) 1,000 0.5 ¥500",
        "3 Welcome 10% off 10 % of ¥1,780 -¥178",
        "4 Consumption tax 10 % of ¥1,602 ¥160",
        "5 Prepaid credits -¥500",
        # Totals = lines + tax.
        "Subtotal ¥1,780 Discounts -¥178 Consumption tax 10 % of ¥1,602 ¥160",
        "Prepaid credits applied -¥500 Total due ¥1,262",
        # How to pay.
        "How to pay: Pay by bank transfer to Example Bank, account 0000000.",
        "Please pay ¥1,262 by 2026-02-19.",
    ):
        assert expected in text, (expected, text)


def _line(number: int, line_type: str, description: str, amount: str, **money: str) -> dict:
    fields = {"quantity": None, "unit_price": None, "base_amount": None, "rate_percent": None}
    fields.update({name: D(value) for name, value in money.items()})
    return {"invoice_line_id": f"u{number}", "line_number": number, "line_type": line_type,
            "description": description, "meter_code": None, "dimension_value": None,
            "amount": D(amount), **fields}  # fmt: skip


def test_money_is_never_in_the_quantity_column_but_in_the_basis():
    """Discounts, minimums, percentage charges and commitments print their base as money in the
    Basis column (rate % of base, or what the base is), with an empty Quantity."""
    lines = [
        _line(1, "charge", "Builds", "10.13", quantity="81", unit_price="0.125"),
        _line(2, "discount", "Builds: discount", "-1.01", base_amount="10.125", rate_percent="10"),
        _line(3, "minimum", "Builds: minimum spend", "40.88", base_amount="50"),
        _line(4, "charge", "Card payments", "358.32", base_amount="12345.67"),
        _line(5, "maximum", "Card payments: maximum spend", "-58.32", base_amount="300"),
        _line(6, "commitment_discount", "Committed-spend discount", "-71.20",
              base_amount="395.57", rate_percent="18"),
        _line(7, "commitment_true_up", "Minimum commitment true-up", "1675.63",
              base_amount="2000"),
    ]  # fmt: skip
    invoice = {**INVOICE, "currency": "USD", "minor_units": 2, "subtotal": D("2000.00"),
               "discount_total": D("0.00"), "tax_total": D("0.00"), "credits_applied": D("0.00"),
               "total": D("2000.00")}  # fmt: skip
    text = _text(render_pdf(invoice_context(invoice, lines, (), CO_ISSUER)))
    for expected in (
        "1 Builds 81 0.125 $10.13",
        "2 Builds: discount 10 % of $10.125 -$1.01",
        "3 Builds: minimum spend minimum spend $50.00 $40.88",
        "4 Card payments on $12,345.67 of transactions $358.32",
        "5 Card payments: maximum spend maximum spend $300.00 -$58.32",
        "6 Committed-spend discount 18 % of $395.57 -$71.20",
        "7 Minimum commitment true-up commitment $2,000.00 $1,675.63",
    ):
        assert expected in text, (expected, text)


def test_a_credit_note_pdf_references_the_invoice_it_corrects():
    text = _text(render_pdf(credit_note_context(CREDIT_NOTE, CREDIT_NOTE_LINES, CO_ISSUER)))
    for expected in (
        "Credit note CN-2026-0001",
        "Usage Billing Co. 1 Meter Street Springfield Tax id US-00-0000000",
        "Bill to Cobalt Consumer GmbH Friedrichstrasse 10 10117 Berlin",
        "Account acct_cobalt",
        "Credit note number CN-2026-0001",
        "Credits invoice 2026-0003",
        "Issue date 2026-02-06",
        "Billing period 2026-01-01 to 2026-01-31",
        "Currency EUR",
        "Reason Late usage lowered the amount billed",
        "1 Late usage correction: Builds (builds.completed) €20.75",
        "2 VAT 19 % of €20.75 €3.94",
        "Credited €20.75 VAT 19 % of €20.75 €3.94 Total credited €24.69",
        "This credit note reduces invoice 2026-0003 by €24.69.",
    ):
        assert expected in text, (expected, text)
    assert "Tax id" not in text.split("Bill to", 1)[1]  # the customer has no tax id


def test_reverse_charge_prints_zero_tax_and_the_legal_mention():
    invoice = {
        **INVOICE,
        "currency": "EUR",
        "minor_units": 2,
        "subtotal": D("1780.00"),
        "discount_total": D("0.00"),
        "tax_total": D("0.00"),
        "credits_applied": D("0.00"),
        "total": D("1780.00"),
        "tax_code": "EU-RC",
        "tax_treatment": "reverse_charge",
        "tax_note": "Reverse charge: VAT to be accounted for by the recipient",
    }
    lines = [{**LINES[0], "amount": D("1280.00")}, {**LINES[1], "amount": D("500.00")}]
    text = _text(render_pdf(invoice_context(invoice, lines, TIERS, {**ISSUER, "locale": "de_DE"})))
    assert "Tax (reverse charge) 0,00 €" in text
    assert "Reverse charge: VAT to be accounted for by the recipient" in text
    assert "Total due 1.780,00 €" in text  # babel, German notation


def test_an_unrounded_amount_is_refused_not_rounded_on_the_page():
    with pytest.raises(ValueError, match="not rounded"):
        invoice_context({**INVOICE, "total": D("1262.4")}, LINES, TIERS, ISSUER)


def test_the_same_document_renders_to_the_same_bytes_also_in_worker_processes(tmp_path):
    context = invoice_context(INVOICE, LINES, TIERS, ISSUER)
    first = render_pdf(context)
    assert render_pdf(invoice_context(INVOICE, LINES, TIERS, ISSUER)) == first
    changed = invoice_context({**INVOICE, "total": D("1263")}, LINES, TIERS, ISSUER)
    assert render_pdf(changed) != first
    # 130 documents: enough for the pool of two processes (chunks of 64).
    items = [(tmp_path / f"{n}.pdf", context) for n in range(130)]
    written = render_many(items, processes=2)
    assert {path.read_bytes() for path in written} == {first}
    assert document_path(tmp_path, context) == tmp_path / "pdf" / "2026-01" / "JP-2026-0007.pdf"


def test_a_draft_says_so_with_its_run_rate():
    draft = {
        **INVOICE,
        "status": "draft",
        "invoice_number": None,
        "issued_on": None,
        "cycle_elapsed_percent": D("48.3"),
        "estimated_period_charges": D("2650"),
    }
    text = _text(render_pdf(invoice_context(draft, LINES, TIERS, ISSUER)))
    assert "DRAFT invoice" in text
    assert "48.3 % of the period; run-rate ¥2,650" in text
