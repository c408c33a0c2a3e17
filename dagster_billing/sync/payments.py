"""Payment collection through Stripe, after the pushes: finalize each Stripe draft invoice once
all its lines are there, and read every invoice's status back (paid / open / uncollectible / void)
into payments.stripe_invoice_status, which dbt's fct_invoice_payments reads.

A draft is finalized only when Stripe's amount_due and line count equal our final invoice's
(total_minor, line_count): an invoice missing a line (a failed item push) stays a draft, is
reported, and is finalized by a later run once the item is there. Finalizing is idempotent by
key (`billing-invoices-<invoice id>-finalize`) and by state (an open invoice is not finalized
again). Reads are appended, never updated: the table is the status history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from dagster_billing.sync.ledger import destination_ids
from dagster_billing.sync.retry import PermanentError, RetriesExhausted
from dagster_billing.sync.stripe_api import StripeApi

STATUS_TABLE = "payments.stripe_invoice_status"
_DDL = f"""
create schema if not exists payments;
create table if not exists {STATUS_TABLE} (
    invoice_id varchar not null,
    stripe_invoice_id varchar not null,
    status varchar not null,
    currency varchar not null,
    amount_due bigint not null,
    amount_paid bigint not null,
    amount_remaining bigint not null,
    due_date date,
    paid_at timestamp,
    observed_at timestamp not null
);
"""


@dataclass(frozen=True)
class BookedInvoice:
    """A final invoice already pushed to Stripe as a draft (its Stripe id from the sync ledger)."""

    invoice_id: str
    stripe_invoice_id: str
    line_count: int
    total_minor: int


@dataclass(frozen=True)
class InvoiceStatus:
    invoice_id: str
    stripe_invoice_id: str
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    due_date: datetime | None
    paid_at: datetime | None


@dataclass
class Collection:
    statuses: list[InvoiceStatus] = field(default_factory=list)
    finalized: list[str] = field(default_factory=list)
    incomplete: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)


def booked_invoices(connection: duckdb.DuckDBPyConnection) -> list[BookedInvoice]:
    """Final invoices with a Stripe invoice, as the sync ledger records them."""
    stripe_ids = destination_ids(connection, "stripe", "invoices")
    if not stripe_ids:
        return []
    rows = connection.execute(
        "select invoice_id, line_count, total_minor from billing.fct_invoices "
        "where status = 'final' and invoice_id in (select unnest(?)) order by invoice_id",
        [sorted(stripe_ids)],
    ).fetchall()
    return [BookedInvoice(i, stripe_ids[i], int(n), int(t)) for i, n, t in rows]


def _utc(seconds: int | None) -> datetime | None:
    return (
        None if seconds is None else datetime.fromtimestamp(int(seconds), UTC).replace(tzinfo=None)
    )


def _status(invoice: BookedInvoice, stripe_invoice: dict) -> InvoiceStatus:
    transitions = stripe_invoice.get("status_transitions") or {}
    return InvoiceStatus(
        invoice_id=invoice.invoice_id,
        stripe_invoice_id=stripe_invoice["id"],
        status=stripe_invoice["status"],
        currency=stripe_invoice["currency"],
        amount_due=int(stripe_invoice["amount_due"]),
        amount_paid=int(stripe_invoice["amount_paid"]),
        amount_remaining=int(stripe_invoice["amount_remaining"]),
        due_date=_utc(stripe_invoice.get("due_date")),
        paid_at=_utc(transitions.get("paid_at")),
    )


def collect(api: StripeApi, invoices: list[BookedInvoice]) -> Collection:
    """Finalize complete drafts, then record each invoice's status as Stripe reports it."""
    collection = Collection()
    for invoice in invoices:
        try:
            found = api.retrieve("invoices", invoice.stripe_invoice_id)
            if found["status"] == "draft":
                lines = (found.get("lines") or {}).get("total_count")
                if found["amount_due"] != invoice.total_minor or lines != invoice.line_count:
                    collection.incomplete.append(
                        {
                            "invoice_id": invoice.invoice_id,
                            "stripe_amount_due": found["amount_due"],
                            "total_minor": invoice.total_minor,
                            "stripe_lines": lines,
                            "line_count": invoice.line_count,
                        }
                    )
                else:
                    found = api.finalize_invoice(
                        invoice.stripe_invoice_id, f"billing-invoices-{invoice.invoice_id}-finalize"
                    )
                    collection.finalized.append(invoice.invoice_id)
            collection.statuses.append(_status(invoice, found))
        except (PermanentError, RetriesExhausted) as error:
            collection.failed.append({"invoice_id": invoice.invoice_id, "error": str(error)})
    return collection


def record_statuses(
    connection: duckdb.DuckDBPyConnection,
    statuses: list[InvoiceStatus],
    observed_at: datetime | None = None,
) -> int:
    connection.execute(_DDL)
    if not statuses:
        return 0
    when = (observed_at or datetime.now(UTC)).replace(tzinfo=None)
    connection.executemany(
        f"insert into {STATUS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                s.invoice_id,
                s.stripe_invoice_id,
                s.status,
                s.currency,
                s.amount_due,
                s.amount_paid,
                s.amount_remaining,
                s.due_date.date() if s.due_date else None,
                s.paid_at,
                when,
            )
            for s in statuses
        ],
    )
    return len(statuses)
