"""An invoice lived through after it is final: issued with a due date from payment terms and
tax, pushed to Stripe as an invoice and finalized there, not yet due, overdue (an invoice.overdue
webhook, signed, delivered once), paid in Stripe, and read back as paid: nothing outstanding, no
more reminders; in NetSuite, a customer payment applied to the invoice makes it Paid In Full. Everything goes through Dagster (the pipeline, the close, the Stripe pushes and
payments/stripe_invoice_status, webhook delivery) against the Stripe contract server, with the real
stripe library; money is compared as exact Decimals."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest
import stripe

from dagster_billing.fakes import start_fakes
from tests.conftest import close_period, query, run_pipeline
from tests.sync_helpers import (
    build_lifecycle_warehouse,
    checks,
    lifecycle_day_events,
    push_assets,
    resources,
    write_events,
)
from tests.test_lifecycle import _deliver, _Receiver

pytestmark = pytest.mark.slow
D = Decimal
SIM_JAN, VOLUME_JAN = "inv-acct_sim-2026-01-01", "inv-acct_volume-2026-01-01"
# acct_sim is a German consumer (no VAT id: 19 % VAT) on net 15; acct_volume keeps the default
# issuer's terms (net 30) and US tax treatment (exempt).
PROFILES = (
    "account_id,legal_name,address_line,country_code,tax_id,payment_terms_days\n"
    "acct_sim,Simulation GmbH,Friedrichstrasse 1; 10117 Berlin,DE,,15\n"
)


def _push_run(warehouse, fakes, destinations=("stripe", "payments")) -> dg.ExecuteInProcessResult:
    """What billing_sync does for Stripe: customers, invoices, invoice items, then finalize and
    read the status back (payments/stripe_invoice_status); or for the `destinations` given."""
    selected = [
        asset for asset in push_assets() if any(key.path[0] in destinations for key in asset.keys)
    ]
    return dg.materialize(
        selected,
        resources=resources(warehouse, fakes),
        instance=dg.DagsterInstance.ephemeral(),
    )


def _payments(warehouse) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select invoice_id, payment_status, outstanding, days_past_due, aging_bucket "
            "from billing.fct_invoice_payments",
        )
    }


def _overdue_events(warehouse) -> set[str]:
    return {
        event_id
        for (event_id,) in query(
            warehouse,
            "select event_id from billing.fct_webhook_events where event_type = 'invoice.overdue'",
        )
    }


def test_an_invoice_is_issued_falls_due_is_chased_and_is_paid(tmp_path):
    warehouse = build_lifecycle_warehouse(
        tmp_path / "lifecycle", **{"account_billing_profiles.csv": PROFILES}
    )
    day = date(2026, 1, 1)
    while day <= date(2026, 1, 31):
        write_events(warehouse, f"usage_{day}.ndjson", lifecycle_day_events(day))
        day += timedelta(days=1)
    run_pipeline(warehouse, as_of="2026-02-04T01:00:00")
    close_period(warehouse, "2026-01-01", as_of="2026-02-04T01:00:00")

    # Issued Feb 4 (January + 3 days' grace): due on net 15 / net 30, tax frozen with the lines.
    invoices = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select invoice_id, status, issued_on, payment_terms_days, due_on, subtotal, "
            "discount_total, tax_total, credits_applied, total, tax_code, customer_legal_name "
            "from billing.fct_invoices where period_start = '2026-01-01'",
        )
    }
    # acct_sim: 41.00 of charges, -3.00 coupon; VAT 19 % of 38.00 = 7.22; credits 11.00.
    assert invoices[SIM_JAN] == (
        "final", date(2026, 2, 4), 15, date(2026, 2, 19), D("41.00"), D("-3.00"), D("7.22"),
        D("11.00"), D("34.22"), "DE-VAT-19", "Simulation GmbH",
    )  # fmt: skip
    assert invoices[VOLUME_JAN][:4] == ("final", date(2026, 2, 4), 30, date(2026, 3, 6))
    assert invoices[VOLUME_JAN][6:8] == (D("0.00"), D("0.00"))  # exempt: no tax line
    [(tax_line, base, rate, frozen)] = query(
        warehouse,
        "select amount, base_amount, rate_percent, due_on from ledger.ledger_document_lines "
        "where document_id = ? and line_type = 'tax'",
        [SIM_JAN],
    )
    assert (tax_line, base, rate, frozen) == (D("7.22"), D("38.00"), D("19"), date(2026, 2, 19))

    fakes = start_fakes(tmp_path / "fakes")
    try:
        first = _push_run(warehouse, fakes)
        assert first.success and all(checks(first).values()), checks(first)
        stripe_invoices = {
            inv["metadata"]["billing_invoice_id"]: inv
            for inv in fakes.stripe.objects["invoice"].values()
        }
        sim = stripe_invoices[SIM_JAN]
        # One Stripe invoice per final invoice, finalized (open), collected by sending it, with
        # our number, due date (end of Feb 19, UTC) and every line, the VAT line included.
        assert (sim["status"], sim["number"], sim["collection_method"]) == (
            "open",
            "2026-0001",
            "send_invoice",
        )
        assert (sim["amount_due"], sim["lines"]["total_count"]) == (3422, 7)
        assert sim["due_date"] == 1771545599  # 2026-02-19T23:59:59Z
        assert stripe_invoices[VOLUME_JAN]["status"] == "open"

        # A day after the due date: 1 day past due, the first reminder, signed and delivered once.
        run_pipeline(warehouse, as_of="2026-02-20T08:00:00")
        assert _payments(warehouse)[SIM_JAN] == ("open", D("34.22"), 1, "1-30")
        [aging] = query(
            warehouse,
            "select past_due_1_30, total_outstanding from billing.fct_receivables_aging "
            "where account_id = 'acct_sim'",
        )
        assert aging == (D("34.22"), D("34.22"))
        assert _overdue_events(warehouse) == {f"invoice.overdue:{SIM_JAN}:1"}
        with _Receiver("s3cret") as receiver:
            assert _deliver(warehouse, receiver.url, "s3cret").success
            assert _deliver(warehouse, receiver.url, "s3cret").success  # nothing new to send
        reminder = receiver.accepted[f"invoice.overdue:{SIM_JAN}:1"]
        assert receiver.attempts[f"invoice.overdue:{SIM_JAN}:1"] == 1
        assert reminder["type"] == "invoice.overdue"
        assert {
            k: reminder["data"][k] for k in ("due_on", "days_past_due", "amount_outstanding")
        } == {
            "due_on": "2026-02-19",
            "days_past_due": 1,
            "amount_outstanding": "34.2200",
        }

        # The customer pays (recorded in Stripe); the status asset reads it back.
        client = stripe.StripeClient(
            fakes.stripe.account.api_key, base_addresses={"api": fakes.urls["stripe"]}
        )
        client.v1.invoices.pay(sim["id"], params={"paid_out_of_band": True})
        second = _push_run(warehouse, fakes)
        assert second.success and all(checks(second).values())
        statuses = dict(
            query(
                warehouse,
                "select status, count(*) from payments.stripe_invoice_status group by status",
            )
        )
        assert statuses == {"open": 3, "paid": 1}  # two reads of two invoices, appended
    finally:
        fakes.stop()

    # Paid: nothing outstanding, no aging row, no further reminder; the other invoice, unpaid
    # and past its own due date, is chased.
    run_pipeline(warehouse, as_of="2026-03-08T08:00:00")
    payments = _payments(warehouse)
    assert payments[SIM_JAN] == ("paid", D("0.00"), 0, "current")
    assert payments[VOLUME_JAN][0:1] + payments[VOLUME_JAN][2:] == ("open", 2, "1-30")
    assert query(
        warehouse, "select account_id from billing.fct_receivables_aging order by account_id"
    ) == [("acct_volume",)]
    assert _overdue_events(warehouse) == {f"invoice.overdue:{VOLUME_JAN}:1"}

    # The books: NetSuite derives an invoice's status from customer payments applied to it, so
    # the paid invoice goes there as a customer payment (read back through the real client).
    fakes = start_fakes(tmp_path / "books")
    try:
        books = _push_run(warehouse, fakes, destinations=("netsuite",))
        assert books.success and all(checks(books).values()), checks(books)
        assert checks(books)["netsuite/customer_payments:matches_warehouse"] is True
        client = resources(warehouse, fakes)["netsuite"].client()  # billing_sync's client
        read = {
            invoice_id: client.get("invoice", f"eid:{invoice_id}")
            for invoice_id in (SIM_JAN, VOLUME_JAN)
        }
        assert {
            invoice_id: (r["status"]["refName"], r["amountPaid"], r["amountRemaining"])
            for invoice_id, r in read.items()
        } == {
            SIM_JAN: ("Paid In Full", D("34.22"), D("0")),
            VOLUME_JAN: ("Open", D("0"), payments[VOLUME_JAN][1]),
        }
        payment = client.get("customerpayment", f"eid:pay-{SIM_JAN}", expand=True)
        assert (payment["customer"], D(payment["payment"])) == (read[SIM_JAN]["entity"], D("34.22"))
        assert [(line["doc"], line["amount"]) for line in payment["apply"]["items"]] == [
            ({"id": read[SIM_JAN]["id"]}, D("34.22"))
        ]
        assert client.get("customerpayment", f"eid:pay-{VOLUME_JAN}") is None
        client.close()
        written = (dict(fakes.netsuite.created), dict(fakes.netsuite.updated))
        assert written[0]["customerpayment"] == 1
        # Someone edits the payment in NetSuite (the books run's check passed above). The next
        # run re-sends nothing (no payload changed), and the reconciliation, which reads
        # NetSuite, says which payment differs.
        fakes.netsuite.record("customerpayment", f"pay-{SIM_JAN}")["payment"] = D("30.00")
        again = _push_run(warehouse, fakes, destinations=("netsuite",))
        assert again.success
        assert (dict(fakes.netsuite.created), dict(fakes.netsuite.updated)) == written
        assert checks(again)["netsuite/customer_payments:matches_warehouse"] is False
        [evaluation] = [
            e
            for e in again.get_asset_check_evaluations()
            if e.asset_key.to_user_string() == "netsuite/customer_payments"
            and e.check_name == "matches_warehouse"
        ]
        assert evaluation.metadata["differences"].value["mismatched"] == [
            {
                "document_id": f"pay-{SIM_JAN}",
                "total": {"warehouse": "34.2200", "destination": "30.00"},
            }
        ]
    finally:
        fakes.stop()
