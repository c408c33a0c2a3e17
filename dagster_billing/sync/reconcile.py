"""Reconciliation: what a destination holds against the warehouse, by `meta.sync.reconcile`:

- invoices / credit_notes / payments: per booked document, line count and total against the final
  invoices (billing.fct_invoices where status = 'final'), the credit notes
  (billing.fct_credit_notes) or, for NetSuite, the customer payments of paid invoices
  (billing.fct_invoice_payments);
- fields: per row of the sync model, every field of its payload against the destination's record
  (customers, accounts, payment fields, Stripe invoices), references resolved as the push
  resolves them.

Each destination is read through its own API (not through our ledger), so the check catches
anything the ledger cannot: records changed or deleted by people, duplicates, lost writes.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dagster_billing.sync.netsuite import RECORD_FIGURES, NetSuiteClient, netsuite_reference
from dagster_billing.sync.push import (
    ExpectedDocument,
    MissingReference,
    SyncPlan,
    parse_payload,
    resolve_references,
)
from dagster_billing.sync.salesforce import SalesforceClient
from dagster_billing.sync.stripe_api import StripeApi

LIST_LIMIT = 50
FIELD_LIMIT = 10  # differing fields listed per record


@dataclass(frozen=True)
class Figures:
    line_count: int
    total: Decimal
    currency: str | None = None


@dataclass(frozen=True)
class Report:
    destination: str
    checked: int  # documents or records the warehouse says the destination holds
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[dict[str, Any], ...] = ()
    duplicated: tuple[str, ...] = ()  # our ids (invoice lines, records) held more than once
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.duplicated)

    def metadata(self) -> dict[str, Any]:
        return {
            "in_warehouse": self.checked,
            "missing_in_destination": len(self.missing),
            "unexpected_in_destination": len(self.unexpected),
            "mismatched": len(self.mismatched),
            "duplicated": len(self.duplicated),
            "differences": {
                "missing": list(self.missing[:LIST_LIMIT]),
                "unexpected": list(self.unexpected[:LIST_LIMIT]),
                "mismatched": list(self.mismatched[:LIST_LIMIT]),
                "duplicated": list(self.duplicated[:LIST_LIMIT]),
            },
            "notes": list(self.notes),
        }


def compare(
    destination: str,
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    differences_of: Callable[[Any, Any], dict[str, Any]],
    *,
    duplicated: Iterable[str] = (),
    notes: Iterable[str] = (),
) -> Report:
    """What the warehouse expects against what the destination holds, keyed by our id;
    `differences_of(expected, held)` says how one document or record differs ({} when not)."""
    mismatched = []
    for document_id in sorted(expected.keys() & actual.keys()):
        differences = differences_of(expected[document_id], actual[document_id])
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


def figure_differences(want: Figures, got: Figures) -> dict[str, Any]:
    """A booked document's line count, total and currency."""
    differences: dict[str, Any] = {}
    if want.line_count != got.line_count:
        differences["line_count"] = {"warehouse": want.line_count, "destination": got.line_count}
    if want.total != got.total:
        differences["total"] = {"warehouse": f"{want.total}", "destination": f"{got.total}"}
    if want.currency and got.currency and want.currency != got.currency:
        differences["currency"] = {"warehouse": want.currency, "destination": got.currency}
    return differences


def _major(documents: Iterable[ExpectedDocument]) -> dict[str, Figures]:
    return {d.document_id: Figures(d.line_count, d.total, d.currency) for d in documents}


def reconcile_netsuite(
    client: NetSuiteClient, record_type: str, documents: Iterable[ExpectedDocument]
) -> Report:
    """GET each warehouse document (invoice, credit memo, customer payment) by external id, with
    its sublists."""
    documents = list(documents)
    figures = RECORD_FIGURES[record_type]
    records = _netsuite_records(client, record_type, [d.document_id for d in documents], True)
    return compare(
        "netsuite",
        {d.document_id: Figures(d.line_count, d.total) for d in documents},
        {document_id: Figures(*figures(r)) for document_id, r in records.items()},
        figure_differences,
        notes=[_netsuite_note(record_type)],
    )


def _netsuite_records(
    client: NetSuiteClient, record_type: str, external_ids: Iterable[str], expand: bool
) -> dict[str, dict]:
    """Each record by external id (the client's `concurrency` at a time); those NetSuite does
    not have are left out."""
    records = client.get_many(record_type, (f"eid:{i}" for i in external_ids), expand=expand)
    return {key.removeprefix("eid:"): record for key, record in records.items()}


def _netsuite_note(record_type: str) -> str:
    return (
        f"read by external id: NetSuite {record_type} records that are not in the warehouse are "
        "not listed"
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
    return compare("salesforce", _major(invoices), actual, figure_differences)


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
        figure_differences,
        duplicated=[line_id for line_id, n in line_ids.items() if n > 1],
        notes=["totals in minor units"],
    )


# -- fields: the destination's record holds what the payload says ----------------------------------


def field_differences(sent: Any, held: Any, path: str = "") -> list[dict[str, Any]]:
    """Where a destination record differs from the payload sent: every field of `sent`, objects
    field by field, lists item by item. Numbers compare as exact decimals ("0.00" equals 0,
    "12.50" equals 12.5: destinations type their fields). Fields the destination holds beyond the
    payload's (its ids, links, fields people own there) are not compared."""
    if isinstance(sent, dict):
        if not isinstance(held, dict):
            return [_difference(path, sent, held)]
        differences = []
        for name, value in sent.items():
            child = f"{path}.{name}" if path else name
            if name not in held:
                differences.append(
                    {"field": child, "warehouse": _shown(value), "destination": None}
                )
            else:
                differences += field_differences(value, held[name], child)
        return differences
    if isinstance(sent, list):
        if not isinstance(held, list) or len(held) != len(sent):
            return [_difference(path, sent, held)]
        return [
            difference
            for index, (item, held_item) in enumerate(zip(sent, held, strict=True))
            for difference in field_differences(item, held_item, f"{path}[{index}]")
        ]
    return [] if _same(sent, held) else [_difference(path, sent, held)]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError:
            return None
        return number if number.is_finite() else None
    return None


def _same(sent: Any, held: Any) -> bool:
    if sent is None or held is None or isinstance(sent, bool) or isinstance(held, bool):
        return sent is held or (type(sent) is type(held) and sent == held)
    if isinstance(sent, (int, Decimal)) or isinstance(held, (int, Decimal)):
        return _number(sent) is not None and _number(sent) == _number(held)
    return sent == held


def _shown(value: Any) -> Any:
    """JSON-safe for the check's metadata: decimals as their exact text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {name: _shown(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value


def _difference(path: str, sent: Any, held: Any) -> dict[str, Any]:
    return {"field": path or "(record)", "warehouse": _shown(sent), "destination": _shown(held)}


def record_differences(sent: Mapping[str, Any], held: Any) -> dict[str, Any]:
    """A reference record's fields (up to FIELD_LIMIT listed)."""
    differences = field_differences(sent, held)
    return {"fields": differences[:FIELD_LIMIT]} if differences else {}


def sent_payloads(
    plan: SyncPlan, replace: Callable[[Any, str], Any], *, leave_out: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """Each model row's payload as the push sends it: references resolved to destination ids
    (a reference not synced yet stays our id, and then differs), `leave_out` fields dropped:
    those the destination takes but never returns (`meta.sync.write_only`)."""
    dropped = {*leave_out, *(plan.sync_object.option("write_only") or ())}
    payloads = {}
    for external_id, payload in plan.expected_records:
        fields = parse_payload(payload)
        with contextlib.suppress(MissingReference):
            fields = resolve_references(
                fields, plan.sync_object.references, plan.reference_ids, replace
            )
        payloads[external_id] = {k: v for k, v in fields.items() if k not in dropped}
    return payloads


def reconcile_netsuite_fields(client: NetSuiteClient, plan: SyncPlan) -> Report:
    """GET each row's record by external id; compare the payload's fields."""
    record_type = plan.sync_object.option("record_type")
    expected = sent_payloads(plan, netsuite_reference)
    return compare(
        "netsuite",
        expected,
        _netsuite_records(client, record_type, expected, False),
        record_differences,
        notes=[_netsuite_note(record_type)],
    )


def reconcile_salesforce_fields(client: SalesforceClient, plan: SyncPlan) -> Report:
    """One SOQL query of the payloads' fields; records matched by the external id field."""
    sobject = plan.sync_object.option("sobject")
    external_id_field = plan.sync_object.option("external_id_field")
    expected = sent_payloads(plan, lambda value, _id: value, leave_out=["attributes"])
    fields = sorted({external_id_field, *(name for p in expected.values() for name in p)})
    records = client.query_all(f"SELECT {', '.join(fields)} FROM {sobject}")
    held, duplicated = _by_our_id(records, lambda record: record.get(external_id_field))
    return compare(
        "salesforce",
        expected,
        held,
        record_differences,
        duplicated=duplicated,
        notes=[f"{sobject} records without {external_id_field} are not ours and not compared"],
    )


def reconcile_stripe_fields(api: StripeApi, plan: SyncPlan) -> Report:
    """Every object of the resource, matched by our id in its metadata (`meta.sync.metadata_id`):
    an id on two objects is a double post."""
    metadata_id = plan.sync_object.option("metadata_id")
    expected = sent_payloads(plan, lambda _value, stripe_id: stripe_id)
    held, duplicated = _by_our_id(
        api.list_all(plan.sync_object.option("resource")),
        lambda obj: (obj.get("metadata") or {}).get(metadata_id),
    )
    return compare(
        "stripe",
        expected,
        held,
        record_differences,
        duplicated=duplicated,
        notes=[f"matched by metadata.{metadata_id}"],
    )


def _by_our_id(
    records: Iterable[dict[str, Any]], our_id: Callable[[dict[str, Any]], str | None]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Records that carry our id, by it (the first of each), and the ids carried more than once."""
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if found_id := our_id(record):
            held[found_id].append(record)
    return (
        {external_id: found[0] for external_id, found in held.items()},
        [external_id for external_id, found in held.items() if len(found) > 1],
    )
