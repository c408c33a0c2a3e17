"""Reverse ETL end to end: dbt sync models -> Dagster push assets -> local contract servers.

Every test pushes through dagster.materialize with the real clients (requests + requests-oauthlib,
simple-salesforce, stripe-python) against servers that check the vendor contract, and asserts
on what the servers hold, not on what our code says it did.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import dagster as dg
import pytest

from dagster_billing.fakes import start_fakes
from tests.conftest import query, run_pipeline
from tests.sync_helpers import (
    TIMEOUT_DELAY,
    build_billed_warehouse,
    checks,
    copy_warehouse,
    exact,
    ledger_current,
    model_counts,
    push_assets,
    run_metadata,
    sync,
)

pytestmark = pytest.mark.slow


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


def test_payloads_carry_exact_money(warehouse):
    invoices = {
        invoice_id: (total, total_minor, line_count)
        for invoice_id, total, total_minor, line_count in query(
            warehouse, "select invoice_id, total, total_minor, line_count from billing.fct_invoices"
        )
    }
    netsuite = dict(
        query(warehouse, "select external_id, payload from sync.sync_netsuite__invoices")
    )
    assert netsuite.keys() == invoices.keys()
    for invoice_id, payload in netsuite.items():
        lines = exact(payload)["item"]["items"]
        assert all(isinstance(line["amount"], str) for line in lines)
        assert sum(Decimal(line["amount"]) for line in lines) == invoices[invoice_id][0]
        assert len(lines) == invoices[invoice_id][2]
    stripe_totals: Counter = Counter()
    for (payload,) in query(warehouse, "select payload from sync.sync_stripe__invoice_items"):
        item = exact(payload)
        assert isinstance(item["amount"], int)
        stripe_totals[item["metadata"]["billing_invoice_id"]] += item["amount"]
    assert stripe_totals == {k: v[1] for k, v in invoices.items()}
    for (payload,) in query(warehouse, "select payload from sync.sync_salesforce__invoices"):
        record = exact(payload)
        assert Decimal(record["Total__c"]) == invoices[record["External_Id__c"]][0]


def test_first_run_creates_everything_and_a_second_run_sends_nothing(warehouse, fakes):
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
    requests_after_first = (
        fakes.netsuite.requests,
        fakes.salesforce.api_calls,
        fakes.stripe.requests,
    )

    second = sync(warehouse, fakes)

    assert second.success and all(checks(second).values())
    assert all(
        meta["changed_rows"] == 0 and meta["sent"] == 0 for meta in run_metadata(second).values()
    )
    assert (
        fakes.netsuite.updated == {}
        and fakes.salesforce.updated == {}
        and fakes.stripe.updated == {}
    )
    assert sum(fakes.stripe.created.values()) == sum(
        counts[m] for m in ("sync_stripe__customers", "sync_stripe__invoice_items")
    )
    # The second run only read (reconciliation), it wrote nothing.
    netsuite_reads = fakes.netsuite.requests - requests_after_first[0]
    assert netsuite_reads == counts["sync_netsuite__invoices"]


def test_a_changed_invoice_updates_in_place(warehouse, fakes):
    assert sync(warehouse, fakes).success
    # A late event for a January line that is already billed (summed meter, positive amount).
    [(invoice_id, account_id, meter, dimension_key, dimension_value, amount, lines)] = query(
        warehouse,
        """
        select l.invoice_id, l.account_id, l.meter_code, m.dimension_key, l.dimension_value,
               l.amount, i.line_count
        from billing.fct_invoice_lines l
        join reference.meters m on l.meter_code = m.meter_code
        join billing.fct_invoices i on l.invoice_id = i.invoice_id
        where m.aggregation = 'sum' and l.amount > 0 and l.period_start = date '2026-01-01'
          and l.pricing_model in ('per_unit', 'graduated')
        order by l.invoice_id, l.charge_id
        limit 1
        """,
    )
    properties = (
        {dimension_key: dimension_value}
        if dimension_key and dimension_value not in (None, "*")
        else {}
    )
    event = {
        "uniqueId": "late-sync-test-1",
        "account": account_id,
        "meter": meter,
        "value": 500000,
        "ts": "2026-01-20T12:00:00Z",
        "properties": properties,
    }
    (warehouse.landing_dir / "late.ndjson").write_text(json.dumps(event) + "\n")
    run_pipeline(warehouse)
    [(new_total, new_total_minor)] = query(
        warehouse,
        "select total, total_minor from billing.fct_invoices where invoice_id = ?",
        [invoice_id],
    )
    stripe_created_before = dict(fakes.stripe.created)

    result = sync(warehouse, fakes)

    assert result.success and all(checks(result).values()), checks(result)
    meta = run_metadata(result)
    assert meta["netsuite/invoices"]["changed_rows"] == 1
    assert meta["netsuite/invoices"]["updated"] == 1
    assert meta["stripe/invoice_items"]["changed_rows"] == 1
    assert meta["stripe/invoice_items"]["updated"] == 1
    # NetSuite: same record, lines replaced (not appended), new total.
    record = fakes.netsuite.record("invoice", invoice_id)
    assert len(record["item"]) == lines
    assert record["total"] == new_total
    assert fakes.netsuite.created["invoice"] == model_counts(warehouse)["sync_netsuite__invoices"]
    # Salesforce: the same Billing_Invoice__c record carries the new total.
    sf_record = fakes.salesforce.find("Billing_Invoice__c", "External_Id__c", invoice_id)
    assert sf_record["Total__c"] == new_total
    assert fakes.salesforce.updated["Billing_Invoice__c"] == 1
    # Stripe: the existing invoice item was updated, nothing new was created.
    assert fakes.stripe.created == stripe_created_before
    assert fakes.stripe.updated == {"invoiceitem": 1}
    invoice_items = [
        i for i in _stripe_items(fakes) if i["metadata"]["billing_invoice_id"] == invoice_id
    ]
    assert sum(i["amount"] for i in invoice_items) == new_total_minor
    assert new_total > amount


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
        == counts["sync_stripe__customers"] + counts["sync_stripe__invoice_items"]
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
