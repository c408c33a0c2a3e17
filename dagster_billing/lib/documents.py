"""Invoice and credit-note documents: what they print, formatted, and their PDF bytes.

Every figure is formatted from a value dbt computed (nothing is re-derived); amounts go through
babel for the issuer's locale and the document's currency, after format_money has checked they
are already rounded to the currency's minor unit. Quantities, unit prices and tier amounts are
plain numbers in the locale's notation. The layout is a Typst template (templates/document.typ)
compiled by the `typst` package: ~10 ms of CPU per page instead of WeasyPrint's ~400 ms
(decision 68), the same bytes for the same document (the PDF's dates are the document's own).

This module imports neither Dagster nor DuckDB, so a pool of worker processes starts quickly.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_currency
from babel.numbers import format_decimal as babel_decimal

from dagster_billing.lib.money import format_decimal, format_money

TEMPLATE = Path(__file__).parent / "templates" / "document.typ"
DEFAULT_LOCALE = "en_US"
# DejaVu Sans (the documents' font) has no fullwidth forms; CLDR's ja_JP yen sign is U+FFE5.
_GLYPH_FALLBACKS = str.maketrans({"\uffe5": "\u00a5"})
TREATMENT_LABELS = {
    "exempt": "exempt",
    "out_of_scope": "not applicable",
    "reverse_charge": "reverse charge",
}


class Formatter:
    """Numbers and money of one document, in its issuer's locale and its currency."""

    def __init__(self, currency: str, minor_units: int, locale: str | None) -> None:
        self.currency = currency
        self.minor_units = minor_units
        self.locale = locale or DEFAULT_LOCALE

    def money(self, amount: Decimal) -> str:
        exact = Decimal(format_money(amount, self.minor_units))
        text = format_currency(exact, self.currency, locale=self.locale, decimal_quantization=False)
        return text.translate(_GLYPH_FALLBACKS)

    def number(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        plain = Decimal(format_decimal(value))
        return babel_decimal(plain, locale=self.locale, decimal_quantization=False)

    def percent(self, value: Decimal) -> str:
        return f"{self.number(value)} %"

    def base(self, value: Decimal) -> str:
        """Money a line is measured on, every digit kept ("$1,060.13", a charge's unrounded
        "$10.125"): a basis is not a billed amount, so it is neither checked nor rounded."""
        plain = Decimal(format_decimal(value))
        text = format_currency(plain, self.currency, locale=self.locale, decimal_quantization=False)
        return text.translate(_GLYPH_FALLBACKS)


def _address_lines(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def _date(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def _terms(days: int | None) -> str:
    if days is None:
        return ""
    return "Due on receipt (net 0)" if days == 0 else f"Net {days} days"


def _issuer(issuer: dict) -> dict:
    return {
        "legal_name": issuer["legal_name"],
        "address_lines": _address_lines(issuer.get("address_line")),
        "tax_label": f"Tax id {issuer['tax_id']}" if issuer.get("tax_id") else "",
    }


def _customer(document: dict) -> dict:
    return {
        "legal_name": document.get("customer_legal_name") or document.get("account_name") or "",
        "address_lines": _address_lines(document.get("customer_address")),
        "tax_label": f"Tax id {document['customer_tax_id']}"
        if document.get("customer_tax_id")
        else "",
        "account_label": f"Account {document['account_id']}",
    }


# How a line measured on money without a rate names its base_amount in the Basis column.
BASIS_LABELS = {
    "charge": "on {} of transactions",  # a percentage charge: fees per transaction
    "minimum": "minimum spend {}",
    "maximum": "maximum spend {}",
    "commitment_true_up": "commitment {}",
}


def _basis(line: dict, fmt: Formatter) -> str:
    """What a line is measured on when it is money (discounts, commitments, minimums, percentage
    charges, coupons, tax): its own column, never the quantity (decision 78)."""
    base, rate = line.get("base_amount"), line.get("rate_percent")
    if base is None:
        return ""
    if rate is not None:
        return f"{fmt.percent(rate)} of {fmt.base(base)}"
    return BASIS_LABELS.get(line["line_type"], "on {}").format(fmt.base(base))


def _description(line: dict) -> str:
    text = line["description"] or ""
    if line.get("meter_code") and line["line_type"] not in ("credit", "tax"):
        dimension = line.get("dimension_value")
        detail = line["meter_code"] + (f", {dimension}" if dimension and dimension != "*" else "")
        text = f"{text} ({detail})"
    return text


def _rows(lines: Iterable[dict], tiers: Iterable[dict], fmt: Formatter) -> list[dict]:
    tiers_by_line: dict[str, list[dict]] = defaultdict(list)
    for tier in tiers:
        tiers_by_line[tier["invoice_line_id"]].append(tier)
    rows = []
    for line in lines:
        rows.append(
            {
                "tier": False,
                "cells": [
                    str(line["line_number"]),
                    _description(line),
                    fmt.number(line.get("quantity")),
                    fmt.number(line.get("unit_price")),
                    _basis(line, fmt),
                    fmt.money(line["amount"]),
                ],
            }
        )
        line_tiers = tiers_by_line.get(line.get("invoice_line_id") or "", [])
        if len(line_tiers) < 2:
            continue
        for tier in line_tiers:
            upper = fmt.number(tier["upper_bound"]) or "unbounded"
            flat = tier.get("flat_fee_charged")
            rows.append(
                {
                    "tier": True,
                    "cells": [
                        "",
                        f"Tier {tier['tier_number']}: {fmt.number(tier['lower_bound'])} to {upper}"
                        + (f", flat fee {fmt.number(flat)}" if flat else ""),
                        fmt.number(tier["tier_quantity"]),
                        fmt.number(tier["unit_price"]),
                        "",
                        fmt.number(tier["amount_unrounded"]),
                    ],
                }
            )
    return rows


def _tax_rows(document: dict, lines: Sequence[dict], fmt: Formatter) -> list[list[str]]:
    taxed = [line for line in lines if line["line_type"] == "tax"]
    if taxed:
        return [
            [f"{line['description']} {fmt.percent(line['rate_percent'])} of "
             f"{fmt.base(line['base_amount'])}", fmt.money(line["amount"])]
            for line in taxed
        ]  # fmt: skip
    label = TREATMENT_LABELS.get(document.get("tax_treatment") or "")
    return [[f"Tax ({label})" if label else "Tax", fmt.money(Decimal(0))]]


def _columns(currency: str) -> list[str]:
    return ["#", "Description", "Quantity", f"Unit price ({currency})", "Basis", "Amount"]


def invoice_context(
    invoice: dict, lines: Sequence[dict], tiers: Iterable[dict], issuer: dict
) -> dict[str, Any]:
    """What an invoice prints: every field a JSON string, formatted from the dbt values."""
    fmt = Formatter(invoice["currency"], invoice["minor_units"], issuer.get("locale"))
    final = invoice["status"] == "final"
    number = invoice.get("invoice_number")
    period = (
        f"{_date(invoice['period_start'])} to {_date(invoice['period_end'] - timedelta(days=1))}"
    )
    details = [
        ["Invoice number", number or "(draft: numbered when final)"],
        ["Billing period", period],
        ["Issue date", _date(invoice.get("issued_on")) or "(not issued)"],
        ["Currency", invoice["currency"]],
        ["Due date", _date(invoice.get("due_on"))],
        ["Plan", f"{invoice['plan_code']} v{invoice['plan_version']}"],
        ["Payment terms", _terms(invoice.get("payment_terms_days"))],
        ["Tax", invoice.get("tax_code") or ""],
    ]
    if not final:
        details += [
            ["Recalculated", f"{invoice['recalculated_at']:%Y-%m-%d %H:%M} UTC"],
            [
                "Run-rate",
                f"{invoice['cycle_elapsed_percent']} % of the period; run-rate "
                f"{fmt.money(invoice['estimated_period_charges'])}",
            ],
        ]
    notes = []
    if invoice.get("tax_note"):
        notes.append(invoice["tax_note"])
    if invoice["total"] > 0 and issuer.get("payment_instructions"):
        due = _date(invoice.get("due_on"))
        notes.append(
            f"How to pay: {issuer['payment_instructions']}. "
            f"Please pay {fmt.money(invoice['total'])} by {due}."
        )
    return {
        "kind": "invoice",
        "title": f"Invoice {number or invoice['invoice_id']}",
        "heading": f"Invoice {number}" if final else "DRAFT invoice",
        "is_draft": not final,
        "document_id": invoice["invoice_id"],
        "date": list(_document_date(invoice).timetuple()[:3]),
        "folder": invoice["period_start"].strftime("%Y-%m"),
        "file_name": number or invoice["invoice_id"],
        "issuer": _issuer(issuer),
        "customer": _customer(invoice),
        "details": details,
        "columns": _columns(invoice["currency"]),
        "rows": _rows(lines, tiers, fmt),
        "totals": [
            ["Subtotal", fmt.money(invoice["subtotal"])],
            ["Discounts", fmt.money(invoice["discount_total"])],
            *_tax_rows(invoice, lines, fmt),
            # 0 - x, not -x: a Decimal zero negated prints as "-0.00".
            ["Prepaid credits applied", fmt.money(Decimal(0) - invoice["credits_applied"])],
        ],
        "total_label": "Total due",
        "total": fmt.money(invoice["total"]),
        "notes": notes,
        "footnote": "Amounts are rounded half-up to the currency's minor unit, once per line; "
        "tax once per invoice and rate; tier rows show unrounded amounts.",
    }


def credit_note_context(note: dict, lines: Sequence[dict], issuer: dict) -> dict[str, Any]:
    """What a credit note prints: the invoice it corrects, its lines, tax and total credited."""
    fmt = Formatter(note["currency"], note["minor_units"], issuer.get("locale"))
    period = f"{_date(note['period_start'])} to {_date(note['period_end'] - timedelta(days=1))}"
    reasons = {"late_usage_correction": "Late usage lowered the amount billed"}
    notes = [
        f"This credit note reduces invoice {note['invoice_number']} by {fmt.money(note['total'])}."
    ]
    if note.get("tax_note"):
        notes.append(note["tax_note"])
    taxed = [line for line in lines if line["line_type"] == "tax"]
    return {
        "kind": "credit_note",
        "title": f"Credit note {note['credit_note_number']}",
        "heading": f"Credit note {note['credit_note_number']}",
        "is_draft": False,
        "document_id": note["credit_note_id"],
        "date": list(note["issued_on"].timetuple()[:3]),
        "folder": note["issued_on"].strftime("%Y-%m"),
        "file_name": note["credit_note_number"],
        "issuer": _issuer(issuer),
        "customer": _customer(note),
        "details": [
            ["Credit note number", note["credit_note_number"]],
            ["Credits invoice", note["invoice_number"] or note["invoice_id"]],
            ["Issue date", _date(note["issued_on"])],
            ["Billing period", period],
            ["Currency", note["currency"]],
            ["Reason", reasons.get(note["reason"], note["reason"] or "")],
        ],
        "columns": _columns(note["currency"]),
        "rows": _rows(lines, (), fmt),
        "totals": [
            ["Credited", fmt.money(note["total"] - note["tax_total"])],
            *([] if not taxed else _tax_rows(note, lines, fmt)),
        ],
        "total_label": "Total credited",
        "total": fmt.money(note["total"]),
        "notes": notes,
        "footnote": "Amounts are rounded half-up to the currency's minor unit, once per line.",
    }


def _document_date(invoice: dict) -> date:
    """The date in the PDF's metadata: the issue day of a final invoice, else its recalculation."""
    if invoice.get("issued_on") is not None:
        return invoice["issued_on"]
    moment: datetime = invoice["recalculated_at"]
    return moment.date()


_compiler = None


def render_pdf(context: dict[str, Any]) -> bytes:
    """The document as PDF bytes; the same context always gives the same bytes."""
    import typst

    global _compiler
    if _compiler is None:
        _compiler = typst.Compiler(str(TEMPLATE))
    return _compiler.compile(sys_inputs={"document": json.dumps(context, sort_keys=True)})


def document_path(exports_dir: Path, context: dict[str, Any]) -> Path:
    folder = "pdf" if context["kind"] == "invoice" else "pdf/credit_notes"
    return exports_dir / folder / context["folder"] / f"{context['file_name']}.pdf"


def _render_to(item: tuple[str, dict[str, Any]]) -> str:
    path, context = item
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(render_pdf(context))
    partial.replace(target)
    return path


def render_many(
    items: Sequence[tuple[Path, dict[str, Any]]], processes: int = 2, chunk_size: int = 64
) -> list[Path]:
    """Render each (path, context) to its file (written under a temporary name, then renamed),
    in `processes` worker processes when there is enough work to pay for starting them."""
    work = [(str(path), context) for path, context in items]
    if processes <= 1 or len(work) < 2 * chunk_size:
        return [Path(_render_to(item)) for item in work]
    import multiprocessing

    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [Path(path) for path in pool.map(_render_to, work, chunksize=chunk_size)]
