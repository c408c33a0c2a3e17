"""Reverse ETL end to end: dbt sync models -> Dagster push assets -> local contract servers.

Every test pushes through dagster.materialize with the real clients (requests + requests-oauthlib,
simple-salesforce, stripe-python) against servers that check the vendor contract, and asserts
on what the servers hold, not on what our code says it did.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from dagster_billing.fakes import start_fakes
from dagster_billing.sync.report import push_reports, render_sync_report
from tests.conftest import close_period, query, run_pipeline
from tests.sync_helpers import (
    TIMEOUT_DELAY,
    build_billed_warehouse,
    build_lifecycle_warehouse,
    checks,
    copy_warehouse,
    exact,
    ledger_current,
    lifecycle_day_events,
    model_counts,
    push_assets,
    reconciliation_differences,
    run_metadata,
    sync,
    write_events,
)

pytestmark = pytest.mark.slow
D = Decimal
SIM_JAN, SIM_FEB = "inv-acct_sim-2026-01-01", "inv-acct_sim-2026-02-01"
VOLUME_JAN, VOLUME_FEB = "inv-acct_volume-2026-01-01", "inv-acct_volume-2026-02-01"


@pytest.fixture(scope="module")
def billed(tmp_path_factory):
    return build_billed_warehouse(tmp_path_factory.mktemp("billed"))


@pytest.fixture
def warehouse(billed, tmp_path):
    return copy_warehouse(billed, tmp_path)


@pytest.fixture
def fakes(tmp_path):
    running = start_fakes(tmp_path / "fakes", timeout_delay=TIMEOUT_DELAY)
    yield running
    running.stop()


def _stripe_items(fakes) -> list[dict]:
    return list(fakes.stripe.objects["invoiceitem"].values())


def test_payloads_carry_exact_money_for_final_invoices_only(warehouse):
    invoices = {
        invoice_id: (total, total_minor, line_count, number, issued_on)
        for invoice_id, total, total_minor, line_count, number, issued_on in query(
            warehouse,
            "select invoice_id, total, total_minor, line_count, invoice_number, issued_on "
            "from billing.fct_invoices where status = 'final'",
        )
    }
    assert len(invoices) == 8  # January and February, four accounts
    netsuite = dict(
        query(warehouse, "select external_id, payload from sync.sync_netsuite__invoices")
    )
    assert netsuite.keys() == invoices.keys()
    for invoice_id, payload in netsuite.items():
        body = exact(payload)
        lines = body["item"]["items"]
        assert all(isinstance(line["amount"], str) for line in lines)
        assert sum(Decimal(line["amount"]) for line in lines) == invoices[invoice_id][0]
        assert len(lines) == invoices[invoice_id][2]
        assert body["tranId"] == invoices[invoice_id][3]
        assert body["tranDate"] == invoices[invoice_id][4].isoformat()
    stripe_totals: Counter = Counter()
    for (payload,) in query(warehouse, "select payload from sync.sync_stripe__invoice_items"):
        item = exact(payload)
        assert isinstance(item["amount"], int)
        invoice_id = item["metadata"]["billing_invoice_id"]
        assert item["metadata"]["billing_invoice_number"] == invoices[invoice_id][3]
        stripe_totals[invoice_id] += item["amount"]
    assert stripe_totals == {k: v[1] for k, v in invoices.items()}
    salesforce = query(warehouse, "select payload from sync.sync_salesforce__invoices")
    assert len(salesforce) == len(invoices)
    for (payload,) in salesforce:
        record = exact(payload)
        total, _, _, number, issued_on = invoices[record["External_Id__c"]]
        assert Decimal(record["Total__c"]) == total
        assert (record["Invoice_Number__c"], record["Issued_On__c"]) == (
            number,
            issued_on.isoformat(),
        )


def test_first_run_creates_everything_and_a_second_run_sends_nothing(warehouse, fakes):
    """...and the second run's reconciliation, which reads the destinations, finds what people
    changed there since: a field of a record of each object without booked documents, and a
    customer posted twice."""
    counts = model_counts(warehouse)

    first = sync(warehouse, fakes)

    assert first.success
    assert all(checks(first).values()), checks(first)
    assert fakes.netsuite.created == {
        "customer": counts["sync_netsuite__customers"],
        "invoice": counts["sync_netsuite__invoices"],
    }
    assert fakes.salesforce.created == {
        "Account": counts["sync_salesforce__accounts"],
        "Billing_Invoice__c": counts["sync_salesforce__invoices"],
    }
    assert fakes.stripe.created == {
        "customer": counts["sync_stripe__customers"],
        "invoice": counts["sync_stripe__invoices"],
        "invoiceitem": counts["sync_stripe__invoice_items"],
    }
    assert all(
        statuses == {"synced": statuses["synced"]}
        for statuses in ledger_current(warehouse).values()
    )
    assert (
        run_metadata(first)["stripe/invoice_items"]["created"]
        == counts["sync_stripe__invoice_items"]
    )
    # Invoices land with their customer's internal id / Stripe id, resolved from the ledger.
    invoice = fakes.netsuite.record("invoice", "inv-acct_granite-2026-01-01")
    customer = fakes.netsuite.record("customer", "acct_granite")
    assert invoice["entity"] == {"id": customer["id"]}
    granite_items = [
        i
        for i in _stripe_items(fakes)
        if i["metadata"]["billing_invoice_id"].startswith("inv-acct_granite")
    ]
    assert {i["currency"] for i in granite_items} == {"jpy"}
    # Every Stripe invoice was finalized (an update) once all its lines were attached; the
    # payment status went onto the Salesforce invoice records (updates of the same records).
    assert {i["status"] for i in fakes.stripe.objects["invoice"].values()} == {"open"}
    assert fakes.stripe.updated == {"invoice": counts["sync_stripe__invoices"]}
    assert fakes.salesforce.updated == {"Billing_Invoice__c": counts["sync_salesforce__invoices"]}
    requests_after_first = (
        fakes.netsuite.requests,
        fakes.salesforce.api_calls,
        fakes.stripe.requests,
    )
    updated_after_first = (
        dict(fakes.netsuite.updated),
        dict(fakes.salesforce.updated),
        dict(fakes.stripe.updated),
    )
    # People edit records in the destinations; one Stripe customer is created twice.
    [(edited_invoice,)] = query(
        warehouse, "select min(external_id) from sync.sync_salesforce__invoice_payments"
    )
    fakes.netsuite.record("customer", "acct_granite")["email"] = "ap@elsewhere.example"
    fakes.salesforce.find("Account", "Billing_Account_Id__c", "acct_granite")[
        "Invoice_Count__c"
    ] = D(99)
    fakes.salesforce.find("Billing_Invoice__c", "External_Id__c", edited_invoice)[
        "Amount_Paid__c"
    ] = D("1.00")
    [granite] = [
        c
        for c in fakes.stripe.objects["customer"].values()
        if c["metadata"]["billing_account_id"] == "acct_granite"
    ]
    fakes.stripe.objects["customer"]["cus_posted_twice"] = {**granite, "id": "cus_posted_twice"}
    [stripe_invoice] = [
        i
        for i in fakes.stripe.objects["invoice"].values()
        if i["metadata"]["billing_invoice_id"] == edited_invoice
    ]
    stripe_invoice["due_date"] += 86400

    instance = dg.DagsterInstance.ephemeral()
    # NetSuite's records are read three at a time this run (NETSUITE_CONCURRENCY): the same
    # differences are found.
    second = sync(warehouse, fakes, instance=instance, netsuite={"concurrency": 3})

    assert second.success
    field_checks = {
        "netsuite/customers:matches_warehouse",
        "salesforce/accounts:matches_warehouse",
        "salesforce/invoice_payments:matches_warehouse",
        "stripe/customers:matches_warehouse",
        "stripe/invoices:matches_warehouse",
    }
    assert field_checks <= set(checks(first))
    assert {name for name, passed in checks(second).items() if not passed} == field_checks
    differences = reconciliation_differences(second)
    assert differences["netsuite/customers"]["mismatched"] == [
        {
            "document_id": "acct_granite",
            "fields": [
                {
                    "field": "email",
                    "warehouse": "billing@granite.example",
                    "destination": "ap@elsewhere.example",
                }
            ],
        }
    ]
    assert differences["salesforce/accounts"]["mismatched"][0]["fields"] == [
        {"field": "Invoice_Count__c", "warehouse": 2, "destination": 99}
    ]
    assert [
        (m["document_id"], [f["field"] for f in m["fields"]])
        for m in differences["salesforce/invoice_payments"]["mismatched"]
    ] == [(edited_invoice, ["Amount_Paid__c"])]
    assert differences["stripe/customers"]["duplicated"] == ["acct_granite"]
    assert [
        (m["document_id"], [f["field"] for f in m["fields"]])
        for m in differences["stripe/invoices"]["mismatched"]
    ] == [(edited_invoice, ["due_date"])]
    # `billing sync-report` reads the same from the run's event log.
    report = render_sync_report(
        second.run_id, "SUCCESS", push_reports(instance, second.run_id)
    ).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in report[2:12]}
    # rows in the model, sent, synced, failed; all_rows_synced, matches_warehouse
    assert rows["netsuite/customers"] == [
        str(counts["sync_netsuite__customers"]),
        "0",
        "0",
        "0",
        "passed",
        "FAILED",
    ]
    assert {asset for asset, row in rows.items() if row[-1] == "FAILED"} == {
        name.split(":")[0] for name in field_checks
    }
    assert "  stripe/customers: duplicated acct_granite" in report
    assert "  netsuite/customers: mismatched acct_granite (email)" in report
    assert all(
        meta["changed_rows"] == 0 and meta["sent"] == 0 for meta in run_metadata(second).values()
    )
    assert fakes.netsuite.updated == {}
    assert (
        dict(fakes.netsuite.updated),
        dict(fakes.salesforce.updated),
        dict(fakes.stripe.updated),
    ) == updated_after_first
    assert sum(fakes.stripe.created.values()) == sum(
        counts[m]
        for m in ("sync_stripe__customers", "sync_stripe__invoices", "sync_stripe__invoice_items")
    )
    # The second run only read (reconciliation: each invoice and each customer), it wrote nothing.
    netsuite_reads = fakes.netsuite.requests - requests_after_first[0]
    assert netsuite_reads == counts["sync_netsuite__invoices"] + counts["sync_netsuite__customers"]


def test_faults_on_a_fifth_of_requests_still_sync_every_row_exactly_once(warehouse, fakes):
    fakes.set_faults(rate=0.2, seed=11)
    counts = model_counts(warehouse)

    result = sync(warehouse, fakes)

    assert result.success
    assert all(checks(result).values()), checks(result)
    assert all(
        statuses == {"synced": statuses["synced"]}
        for statuses in ledger_current(warehouse).values()
    )
    # Each record was created exactly once, although some requests were retried after the server
    # had already applied them (timeouts).
    assert fakes.netsuite.created == {
        "customer": counts["sync_netsuite__customers"],
        "invoice": counts["sync_netsuite__invoices"],
    }
    assert fakes.salesforce.created == {
        "Account": counts["sync_salesforce__accounts"],
        "Billing_Invoice__c": counts["sync_salesforce__invoices"],
    }
    assert fakes.stripe.created == {
        "customer": counts["sync_stripe__customers"],
        "invoice": counts["sync_stripe__invoices"],
        "invoiceitem": counts["sync_stripe__invoice_items"],
    }
    line_ids = Counter(i["metadata"]["billing_line_id"] for i in _stripe_items(fakes))
    assert len(line_ids) == counts["sync_stripe__invoice_items"] and set(line_ids.values()) == {1}
    assert all(len(r["item"]) == r_lines for r, r_lines in _netsuite_line_counts(warehouse, fakes))
    # The faults really happened, at every server and of every kind, and were retried.
    injected: Counter = Counter()
    for fake in (fakes.netsuite, fakes.salesforce, fakes.stripe):
        assert sum(fake.faults.injected.values()) > 0, fake.name
        injected.update(fake.faults.injected)
    assert injected["timeout"] > 0 and injected["500"] > 0
    assert injected["429"] + injected["429_should_retry"] + injected["limit"] > 0
    assert fakes.stripe.replayed > 0  # a timed-out create was answered from the idempotency store
    assert sum(meta["retried_requests"] for meta in run_metadata(result).values()) > 0

    again = sync(warehouse, fakes)

    assert all(meta["sent"] == 0 for meta in run_metadata(again).values())
    assert (
        sum(fakes.stripe.created.values())
        == counts["sync_stripe__customers"]
        + counts["sync_stripe__invoices"]
        + counts["sync_stripe__invoice_items"]
    )


def _netsuite_line_counts(warehouse, fakes):
    for invoice_id, line_count in query(
        warehouse, "select invoice_id, line_count from billing.fct_invoices"
    ):
        yield fakes.netsuite.record("invoice", invoice_id), line_count


def test_bad_credentials_fail_fast_and_write_nothing(warehouse, fakes):
    result = sync(
        warehouse,
        fakes,
        raise_on_error=False,
        netsuite={"token_secret": "wrong"},
        salesforce={"client_secret": "wrong"},
        stripe={"api_key": "sk_test_wrong"},
    )

    assert not result.success
    failures = {
        event.step_key: event.event_specific_data.error.message
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_FAILURE
    }
    assert (
        "NetSuite rejected the credentials"
        in failures["netsuite__customers.netsuite__customers__push"]
    )
    assert (
        "Salesforce refused the client credentials"
        in failures["salesforce__accounts.salesforce__accounts__push"]
    )
    assert "Stripe rejected the API key" in failures["stripe__customers.stripe__customers__push"]
    assert all("Nothing was sent" in message for message in failures.values())
    # Nothing reached the destinations, nothing was recorded, and each gave up after one request.
    assert (
        fakes.netsuite.created == {}
        and fakes.salesforce.created == {}
        and fakes.stripe.created == {}
    )
    assert fakes.netsuite.requests == 1 and fakes.stripe.requests == 1
    assert fakes.salesforce.api_calls == 0
    assert query(
        warehouse, "select count(*) from information_schema.tables where table_name = 'ledger'"
    ) == [(0,)]
    assert not result.get_asset_materialization_events()


def test_a_missing_secret_fails_at_launch(warehouse, fakes, monkeypatch):
    from dagster_billing.defs.sync.resources import NetSuiteResource

    monkeypatch.delenv("NETSUITE_TOKEN_SECRET", raising=False)
    netsuite_assets = [a for a in push_assets() if a.key.path[0] == "netsuite"]
    resources = {
        "warehouse": warehouse,
        "netsuite": NetSuiteResource(
            account_id="1234567_SB1",
            consumer_key="k",
            consumer_secret="s",
            token_id="t",
            token_secret=dg.EnvVar("NETSUITE_TOKEN_SECRET"),
            base_url=fakes.urls["netsuite"],
        ),
    }

    with pytest.raises(dg.DagsterInvalidConfigError, match="NETSUITE_TOKEN_SECRET"):
        dg.materialize(
            netsuite_assets, resources=resources, instance=dg.DagsterInstance.ephemeral()
        )
    assert fakes.netsuite.requests == 0


def test_a_failed_row_stays_failed_and_is_retried_next_run(warehouse, fakes):
    # The NetSuite account has no EUR currency record yet: the EUR customer and invoices fail.
    eur_id = "4"
    currencies = fakes.netsuite.account.currencies
    euro = currencies.pop(eur_id)

    first = sync(warehouse, fakes)

    assert first.success
    assert checks(first)["netsuite/customers:all_rows_synced"] is False
    assert checks(first)["netsuite/invoices:matches_warehouse"] is False
    failed = dict(
        query(
            warehouse,
            "select external_id, response_code from sync.ledger_current where destination = 'netsuite' and status = 'failed' and object = 'customers'",
        )
    )
    assert failed == {"acct_cobalt": 400}
    assert fakes.netsuite.record("customer", "acct_cobalt") is None

    second = sync(warehouse, fakes)  # still failing: stays failed, is sent again
    assert run_metadata(second)["netsuite/customers"]["changed_rows"] == 1
    assert query(
        warehouse,
        "select max(attempt) from sync.ledger where destination = 'netsuite' and external_id = 'acct_cobalt'",
    ) == [(2,)]

    currencies[eur_id] = euro
    third = sync(warehouse, fakes)

    assert all(checks(third).values()), checks(third)
    assert fakes.netsuite.record("customer", "acct_cobalt") is not None
    meta = run_metadata(third)
    assert meta["netsuite/customers"]["synced"] == 1
    assert meta["netsuite/invoices"]["synced"] == 2  # cobalt's two invoices, no others


# Its own warehouse, not `billed`: under xdist it may run beside the rest of the module.
@pytest.mark.xdist_group("sync_period")
def test_a_period_lived_through_books_final_invoices_and_credit_notes_once(tmp_path, fakes):
    """Drafts stay home; final invoices go out once with their numbers; late usage that raises a
    final invoice (an adjustment on the next draft) re-sends nothing; late usage that lowers one
    posts a credit memo against the NetSuite invoice, once."""
    warehouse = build_lifecycle_warehouse(tmp_path / "lifecycle")
    day = date(2026, 1, 1)
    while day <= date(2026, 2, 3):
        write_events(warehouse, f"usage_{day}.ndjson", lifecycle_day_events(day))
        day += timedelta(days=1)
    run_pipeline(warehouse, as_of="2026-02-04T01:00:00")
    close_period(warehouse, "2026-01-01", as_of="2026-02-04T01:00:00")
    statuses = dict(query(warehouse, "select invoice_id, status from billing.fct_invoices"))
    assert statuses == {
        SIM_JAN: "final",
        VOLUME_JAN: "final",
        SIM_FEB: "draft",
        VOLUME_FEB: "draft",
    }

    first = sync(warehouse, fakes)

    assert first.success and all(checks(first).values()), checks(first)
    assert fakes.netsuite.created == {"customer": 2, "invoice": 2}
    assert fakes.salesforce.created == {"Account": 2, "Billing_Invoice__c": 2}
    sim = fakes.netsuite.record("invoice", SIM_JAN)
    volume = fakes.netsuite.record("invoice", VOLUME_JAN)
    assert (sim["tranId"], sim["tranDate"], sim["total"]) == ("2026-0001", "2026-02-04", D("27.00"))
    # Charges, the coupon and three prepaid credits, as printed on the final invoice.
    assert [line["amount"] for line in sim["item"]] == [
        D("25.50"), D("15.50"), D("-3.00"), D("-2.00"), D("-5.00"), D("-4.00"),
    ]  # fmt: skip
    assert (volume["tranId"], volume["total"]) == ("2026-0002", D("46.50"))
    items = Counter()
    for item in _stripe_items(fakes):
        metadata = item["metadata"]
        items[(metadata["billing_invoice_id"], metadata["billing_invoice_number"])] += item[
            "amount"
        ]
    assert items == {(SIM_JAN, "2026-0001"): 2700, (VOLUME_JAN, "2026-0002"): 4650}
    sf_invoice = fakes.salesforce.find("Billing_Invoice__c", "External_Id__c", SIM_JAN)
    assert (sf_invoice["Invoice_Number__c"], sf_invoice["Issued_On__c"]) == (
        "2026-0001",
        "2026-02-04",
    )
    # Drafts are not sent anywhere; the Account shows the running draft instead.
    assert fakes.netsuite.record("invoice", SIM_FEB) is None
    assert fakes.salesforce.find("Billing_Invoice__c", "External_Id__c", SIM_FEB) is None
    [(feb_total, feb_estimate, feb_elapsed)] = query(
        warehouse,
        "select total, estimated_period_charges, cycle_elapsed_percent from billing.fct_invoices "
        "where invoice_id = ?",
        [SIM_FEB],
    )
    account = fakes.salesforce.find("Account", "Billing_Account_Id__c", "acct_sim")
    assert account["Last_Invoice_Number__c"] == "2026-0001"
    assert account["Current_Period_Start__c"] == "2026-02-01"
    assert (account["Current_Period_Total__c"], account["Current_Period_Estimate__c"]) == (
        feb_total,
        feb_estimate,
    )
    assert D(str(account["Current_Period_Elapsed__c"])) == feb_elapsed > 0

    second = sync(warehouse, fakes)

    assert second.success and all(checks(second).values())
    assert all(meta["sent"] == 0 for meta in run_metadata(second).values())

    # Late January usage, arriving Feb 6: 500 more API calls for acct_sim (its bill goes up: an
    # adjustment on February's draft) and 10 more builds for acct_volume (103 builds: every build
    # is cheaper, its bill goes down: a credit note). January's invoices stay as booked.
    late = [
        {"uniqueId": "sim-api-late", "account": "acct_sim", "meter": "api.requests",
         "value": 500, "ts": "2026-01-31T18:00:00Z"},
        *[{"uniqueId": f"vol-build-late-{n}", "account": "acct_volume",
           "meter": "builds.completed", "value": 1, "ts": f"2026-01-31T20:0{n}:00Z"}
          for n in range(10)],
    ]  # fmt: skip
    write_events(warehouse, "late_2026-02-06.ndjson", late)
    run_pipeline(warehouse, as_of="2026-02-06T08:00:00")
    close_period(warehouse, "2026-01-01", as_of="2026-02-06T09:00:00")
    [(note_id, note_number, credited)] = query(
        warehouse, "select credit_note_id, credit_note_number, total from billing.fct_credit_notes"
    )
    assert (note_number, credited) == ("CN-2026-0001", D("20.75"))  # 46.50 - 103 x 0.25
    stripe_before = (dict(fakes.stripe.created), dict(fakes.stripe.updated))

    third = sync(warehouse, fakes)

    assert third.success and all(checks(third).values()), checks(third)
    meta = run_metadata(third)
    assert meta["netsuite/credit_memos"]["created"] == 1
    assert meta["netsuite/invoices"]["sent"] == meta["salesforce/invoices"]["sent"] == 0
    assert meta["stripe/invoice_items"]["sent"] == 0
    assert fakes.netsuite.created == {"customer": 2, "invoice": 2, "creditmemo": 1}
    assert fakes.netsuite.updated == {}  # no invoice touched
    assert (dict(fakes.stripe.created), dict(fakes.stripe.updated)) == stripe_before
    # Salesforce invoice records keep their booked figures; only their payment fields move
    # (the credit note lowered what acct_volume owes).
    sf_volume = fakes.salesforce.find("Billing_Invoice__c", "External_Id__c", VOLUME_JAN)
    assert (sf_volume["Total__c"], sf_volume["Amount_Outstanding__c"]) == (D("46.50"), D("25.75"))
    memo = fakes.netsuite.record("creditmemo", note_id)
    assert memo["createdFrom"] == {"id": volume["id"]}
    assert memo["entity"] == volume["entity"]
    assert (memo["tranId"], memo["tranDate"]) == ("CN-2026-0001", "2026-02-06")
    assert [line["amount"] for line in memo["item"]] == [D("20.75")]
    assert memo["total"] == credited
    # The books in NetSuite: the invoice as issued, and the credit against it.
    assert fakes.netsuite.record("invoice", VOLUME_JAN)["total"] - memo["total"] == D("25.75")
    volume_account = fakes.salesforce.find("Account", "Billing_Account_Id__c", "acct_volume")
    assert volume_account["Lifetime_Billed__c"] == D("25.75")
    [(feb_total_now,)] = query(
        warehouse, "select total from billing.fct_invoices where invoice_id = ?", [SIM_FEB]
    )
    sim_account = fakes.salesforce.find("Account", "Billing_Account_Id__c", "acct_sim")
    assert sim_account["Current_Period_Total__c"] == feb_total_now != feb_total
    # The Accounts whose running draft moved were updated in place, none created again.
    assert fakes.salesforce.created == {"Account": 2, "Billing_Invoice__c": 2}
    assert fakes.salesforce.updated.get("Account", 0) >= 1

    fourth = sync(warehouse, fakes)

    assert fourth.success and all(checks(fourth).values())
    assert all(meta["sent"] == 0 for meta in run_metadata(fourth).values())
    assert fakes.netsuite.created["creditmemo"] == 1
