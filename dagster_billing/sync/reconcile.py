"""Reconciliation: what a destination holds, per booked document, against the warehouse: final
invoices (billing.fct_invoices where status = 'final'), credit notes (billing.fct_credit_notes)
or, for NetSuite, the customer payments of paid invoices (billing.fct_invoice_payments).

Each destination is read through its own API (not through our ledger), so the check catches
anything the ledger cannot: records changed or deleted by people, duplicates, lost writes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dagster_billing.sync.netsuite import RECORD_FIGURES, NetSuiteClient
from dagster_billing.sync.push import ExpectedDocument
from dagster_billing.sync.salesforce import SalesforceClient
from dagster_billing.sync.stripe_api import StripeApi

LIST_LIMIT = 50


@dataclass(frozen=True)
class Figures:
    line_count: int
    total: Decimal
    currency: str | None = None


@dataclass(frozen=True)
class Report:
    destination: str
    checked: int
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[dict[str, Any], ...] = ()
    duplicated: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.duplicated)

    def metadata(self) -> dict[str, Any]:
        return {
            "documents_in_warehouse": self.checked,
            "missing_in_destination": len(self.missing),
            "unexpected_in_destination": len(self.unexpected),
            "mismatched": len(self.mismatched),
            "duplicated_lines": len(self.duplicated),
            "differences": {
                "missing": list(self.missing[:LIST_LIMIT]),
                "unexpected": list(self.unexpected[:LIST_LIMIT]),
                "mismatched": list(self.mismatched[:LIST_LIMIT]),
                "duplicated_lines": list(self.duplicated[:LIST_LIMIT]),
            },
            "notes": list(self.notes),
        }


def compare(
    destination: str,
    expected: Mapping[str, Figures],
    actual: Mapping[str, Figures],
    *,
    duplicated: Iterable[str] = (),
    notes: Iterable[str] = (),
) -> Report:
    mismatched = []
    for document_id in sorted(expected.keys() & actual.keys()):
        want, got = expected[document_id], actual[document_id]
        differences = {}
        if want.line_count != got.line_count:
            differences["line_count"] = {
                "warehouse": want.line_count,
                "destination": got.line_count,
            }
        if want.total != got.total:
            differences["total"] = {"warehouse": f"{want.total}", "destination": f"{got.total}"}
        if want.currency and got.currency and want.currency != got.currency:
            differences["currency"] = {"warehouse": want.currency, "destination": got.currency}
        if differences:
            mismatched.append({"document_id": document_id, **differences})
    return Report(
        destination=destination,
        checked=len(expected),
        missing=tuple(sorted(expected.keys() - actual.keys())),
        unexpected=tuple(sorted(actual.keys() - expected.keys())),
        mismatched=tuple(mismatched),
        duplicated=tuple(sorted(duplicated)),
        notes=tuple(notes),
    )


def _major(documents: Iterable[ExpectedDocument]) -> dict[str, Figures]:
    return {d.document_id: Figures(d.line_count, d.total, d.currency) for d in documents}


def reconcile_netsuite(
    client: NetSuiteClient, record_type: str, documents: Iterable[ExpectedDocument]
) -> Report:
    """GET each warehouse document (invoice, credit memo, customer payment) by external id, with
    its sublists."""
    documents = list(documents)
    figures = RECORD_FIGURES[record_type]
    actual = {}
    for document in documents:
        record = client.get(record_type, f"eid:{document.document_id}", expand=True)
        if record is not None:
            line_count, total, _currency_id = figures(record)
            actual[document.document_id] = Figures(line_count, total)
    return compare(
        "netsuite",
        {k: Figures(v.line_count, v.total) for k, v in _major(documents).items()},
        actual,
        notes=[
            f"read by external id: NetSuite {record_type} records that are not in the warehouse "
            "are not listed"
        ],
    )


def reconcile_salesforce(
    client: SalesforceClient,
    sobject: str,
    external_id_field: str,
    invoices: Iterable[ExpectedDocument],
) -> Report:
    records = client.query_all(
        f"SELECT {external_id_field}, Line_Count__c, Total__c, Currency__c FROM {sobject}"
    )
    actual = {
        record[external_id_field]: Figures(
            int(record.get("Line_Count__c") or 0),
            Decimal(record.get("Total__c") or 0),
            record.get("Currency__c"),
        )
        for record in records
    }
    return compare("salesforce", _major(invoices), actual)


def reconcile_stripe(api: StripeApi, invoices: Iterable[ExpectedDocument]) -> Report:
    """All invoice items carrying our invoice id in metadata, summed per invoice in minor units."""
    lines_per_invoice: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    currencies: dict[str, str] = {}
    line_ids: Counter[str] = Counter()
    for item in api.list_all("invoice_items"):
        metadata = item.get("metadata") or {}
        invoice_id = metadata.get("billing_invoice_id")
        if not invoice_id:
            continue
        lines_per_invoice[invoice_id] += 1
        totals[invoice_id] += int(item["amount"])
        currencies[invoice_id] = str(item["currency"]).upper()
        line_ids[metadata.get("billing_line_id")] += 1
    expected = {
        i.document_id: Figures(i.line_count, Decimal(i.total_minor), i.currency) for i in invoices
    }
    actual = {
        invoice_id: Figures(count, Decimal(totals[invoice_id]), currencies.get(invoice_id))
        for invoice_id, count in lines_per_invoice.items()
    }
    return compare(
        "stripe",
        expected,
        actual,
        duplicated=[line_id for line_id, n in line_ids.items() if n > 1],
        notes=["totals in minor units"],
    )
