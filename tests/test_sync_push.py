"""The push layer below Dagster: the ledger, references, Stripe's pinned creates, Salesforce batches,
and what adding a `sync_netsuite__credit_memos` model would take."""

from __future__ import annotations

import json
from decimal import Decimal as D

import dagster as dg
import duckdb
import pytest

from dagster_billing.fakes import start_fakes
from dagster_billing.sync import netsuite, salesforce, stripe_api
from dagster_billing.sync.ledger import SyncModelMissing, load_plan, record_results
from dagster_billing.sync.push import RowResult
from dagster_billing.sync.reconcile import field_differences
from dagster_billing.sync.retry import RetryPolicy
from dagster_billing.sync.spec import SyncObject, SyncSpecError, sync_objects_from_manifest

FAST = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    running = start_fakes(tmp_path_factory.mktemp("fakes"), timeout_delay=0.8)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def clean(fakes):
    fakes.reset()
    fakes.set_faults(rate=0.0, methods=[])


@pytest.fixture
def connection(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema sync")
    yield con
    con.close()


def _model(connection, table: str, rows: dict[str, dict]) -> None:
    connection.execute(
        f"create or replace table sync.{table} (external_id varchar, payload varchar, payload_hash varchar)"
    )
    for external_id, payload in rows.items():
        text = json.dumps(payload, separators=(",", ":"))
        connection.execute(
            f"insert into sync.{table} values (?, ?, md5(?))", [external_id, text, text]
        )


def _node(name: str, **sync) -> dict:
    return {
        "resource_type": "model",
        "name": name,
        "config": {"schema": "sync", "meta": {"sync": sync}},
    }


def _object(name: str, *nodes: dict) -> SyncObject:
    """The sync object `name` of a manifest made of `nodes`."""
    (found,) = [
        o
        for o in sync_objects_from_manifest({"nodes": {str(i): n for i, n in enumerate(nodes)}})
        if o.object == name
    ]
    return found


CUSTOMERS = _node(
    "sync_netsuite__customers", destination="netsuite", object="customers", record_type="customer"
)
CREDIT_MEMOS = _node(
    "sync_netsuite__credit_memos",
    destination="netsuite",
    object="credit_memos",
    record_type="creditmemo",
    replace_sublists=["item"],
    references={"entity": "customers", "createdFrom": "invoices"},
    after=["invoices"],
)


def test_sync_objects_come_from_model_meta_in_dependency_order():
    from dagster_billing.defs.dbt.project import billing_project

    manifest = json.loads(billing_project.manifest_path.read_text())
    manifest["nodes"]["model.billing.sync_netsuite__credit_memos"] = CREDIT_MEMOS
    objects = [o.name for o in sync_objects_from_manifest(manifest)]
    assert (
        objects.index("netsuite/customers")
        < objects.index("netsuite/invoices")
        < objects.index("netsuite/credit_memos")
    )
    assert objects.index("stripe/customers") < objects.index("stripe/invoice_items")
    with pytest.raises(SyncSpecError, match="record_type"):
        sync_objects_from_manifest(
            {"nodes": {"m": _node("sync_netsuite__x", destination="netsuite", object="x")}}
        )
    with pytest.raises(SyncSpecError, match="unknown sync object"):
        sync_objects_from_manifest({"nodes": {"m": {**CREDIT_MEMOS}}})
    # Payments are reconciled against NetSuite's customer payments only.
    payments = _node(
        "sync_stripe__x",
        destination="stripe",
        object="x",
        resource="invoices",
        reconcile="payments",
    )
    with pytest.raises(SyncSpecError, match="NetSuite customer payments only"):
        sync_objects_from_manifest({"nodes": {"m": payments}})
    # Stripe has no external ids: reconciling fields needs the metadata key that holds ours.
    fields = _node(
        "sync_stripe__x", destination="stripe", object="x", resource="customers", reconcile="fields"
    )
    with pytest.raises(SyncSpecError, match="metadata_id"):
        sync_objects_from_manifest({"nodes": {"m": fields}})


def test_field_reconciliation_compares_every_field_sent_and_numbers_exactly():
    sent = {
        "email": "ap@granite.example",
        "isPerson": False,
        "total": "12.50",
        "count": 2,
        "subsidiary": {"id": "1"},
        "lines": [{"amount": "1.00"}, {"amount": "2.00"}],
        "note": None,
    }
    # What a destination returns: typed numbers, its own ids and links, fields we do not send.
    held = {
        "id": "42",
        "links": [{"rel": "self"}],
        "email": "ap@granite.example",
        "isPerson": False,
        "total": D("12.5"),
        "count": D("2.0"),
        "subsidiary": {"id": "1", "refName": "Parent"},
        "lines": [{"amount": D("1")}, {"amount": 2}],
        "note": None,
        "phone": "555",
    }
    assert field_differences(sent, held) == []
    changed = {
        **held,
        "total": D("12.51"),
        "isPerson": 0,
        "subsidiary": {"id": "2"},
        "lines": [{"amount": D("1")}],
        "note": "",
    }
    del changed["email"]
    assert field_differences(sent, changed) == [
        {"field": "email", "warehouse": "ap@granite.example", "destination": None},
        {"field": "isPerson", "warehouse": False, "destination": 0},
        {"field": "total", "warehouse": "12.50", "destination": "12.51"},
        {"field": "subsidiary.id", "warehouse": "1", "destination": "2"},
        {
            "field": "lines",
            "warehouse": [{"amount": "1.00"}, {"amount": "2.00"}],
            "destination": [{"amount": "1"}],
        },
        {"field": "note", "warehouse": None, "destination": ""},
    ]
    # A number is never equal to text that is not one, nor a string "2" to a string "2.0".
    assert field_differences({"n": 2}, {"n": "two"}) and field_differences({"s": "2"}, {"s": "2.0"})


def test_a_credit_memo_model_is_all_it_takes_to_get_a_push_asset():
    from dagster_billing.defs.sync.factory import build_push_asset
    from dagster_billing.defs.sync.netsuite import NETSUITE

    credit_memos = _object(
        "credit_memos",
        CUSTOMERS,
        _node(
            "sync_netsuite__invoices",
            destination="netsuite",
            object="invoices",
            record_type="invoice",
        ),
        CREDIT_MEMOS,
    )

    asset = build_push_asset(credit_memos, NETSUITE)

    assert asset.key == dg.AssetKey(["netsuite", "credit_memos"])
    assert set(asset.dependency_keys) == {
        dg.AssetKey(["sync", "sync_netsuite__credit_memos"]),
        dg.AssetKey(["netsuite", "customers"]),
        dg.AssetKey(["netsuite", "invoices"]),
    }
    pools = {
        name.rsplit("__", 1)[-1]: node.definition.pool
        for name, node in asset.node_def.node_dict.items()
    }
    assert pools == {"load": "duckdb", "push": "netsuite_api", "record": "duckdb"}


def test_credit_memos_post_once_with_resolved_references(fakes, connection):
    env = fakes.environment()
    client = netsuite.NetSuiteClient(
        account_id=env["NETSUITE_ACCOUNT_ID"],
        consumer_key=env["NETSUITE_CONSUMER_KEY"],
        consumer_secret=env["NETSUITE_CONSUMER_SECRET"],
        token_id=env["NETSUITE_TOKEN_ID"],
        token_secret=env["NETSUITE_TOKEN_SECRET"],
        base_url=env["NETSUITE_BASE_URL"],
        retry=FAST,
    )
    objects = {
        o.object: o
        for o in sync_objects_from_manifest(
            {
                "nodes": {
                    "c": CUSTOMERS,
                    "i": _node(
                        "sync_netsuite__invoices",
                        destination="netsuite",
                        object="invoices",
                        record_type="invoice",
                        replace_sublists=["item"],
                        references={"entity": "customers"},
                    ),
                    "m": CREDIT_MEMOS,
                }
            }
        )
    }
    line = {"item": {"id": "1001"}, "quantity": "1"}
    _model(
        connection,
        "sync_netsuite__customers",
        {"acct_x": {"companyName": "X", "subsidiary": {"id": "1"}}},
    )
    _model(
        connection,
        "sync_netsuite__invoices",
        {
            "inv-1": {
                "entity": {"externalId": "acct_x"},
                "item": {"items": [{**line, "amount": "100.00"}]},
            }
        },
    )
    _model(
        connection,
        "sync_netsuite__credit_memos",
        {
            "cn-1": {
                "entity": {"externalId": "acct_x"},
                "createdFrom": {"externalId": "inv-1"},
                "item": {"items": [{**line, "amount": "30.00"}]},
            }
        },
    )
    for name in ("customers", "invoices", "credit_memos"):
        plan = load_plan(connection, objects[name])
        outcome = netsuite.push(plan, client)
        record_results(connection, "run-1", objects[name], outcome.results)
        assert [r.status for r in outcome.results] == ["synced"], outcome.results

    memo = fakes.netsuite.record("creditmemo", "cn-1")
    assert memo["createdFrom"] == {"id": fakes.netsuite.record("invoice", "inv-1")["id"]}
    assert memo["entity"] == {"id": fakes.netsuite.record("customer", "acct_x")["id"]}
    assert str(memo["total"]) == "30.00"
    assert load_plan(connection, objects["credit_memos"]).pending == ()  # posted once
    assert fakes.netsuite.created == {"customer": 1, "invoice": 1, "creditmemo": 1}


def _stripe_objects() -> dict[str, SyncObject]:
    return {
        o.object: o
        for o in sync_objects_from_manifest(
            {
                "nodes": {
                    "c": _node(
                        "sync_stripe__customers",
                        destination="stripe",
                        object="customers",
                        resource="customers",
                    ),
                    "i": _node(
                        "sync_stripe__invoice_items",
                        destination="stripe",
                        object="invoice_items",
                        resource="invoice_items",
                        references={"customer": "customers"},
                        immutable_on_update=["customer", "currency"],
                    ),
                }
            }
        )
    }


def _item(amount: int) -> dict:
    return {
        "customer": "acct_x",
        "amount": amount,
        "currency": "usd",
        "metadata": {"billing_line_id": "inv-1:api"},
    }


def test_stripe_in_doubt_create_is_repeated_before_a_changed_payload_is_applied(fakes, connection):
    env = fakes.environment()
    api = stripe_api.StripeApi(
        api_key=env["STRIPE_API_KEY"],
        api_base=env["STRIPE_API_BASE"],
        timeout_seconds=0.4,
        retry=FAST,
    )
    objects = _stripe_objects()
    _model(connection, "sync_stripe__customers", {"acct_x": {"name": "X"}})
    _model(connection, "sync_stripe__invoice_items", {"inv-1:api": _item(1000)})
    record_results(
        connection,
        "run-1",
        objects["customers"],
        stripe_api.push(load_plan(connection, objects["customers"]), api).results,
    )

    # Run 2: every response to the create is lost after Stripe executed it.
    fakes.set_faults(rate=1.0, kinds=["timeout"], timeout_delay=0.8, methods=["POST"])
    outcome = stripe_api.push(load_plan(connection, objects["invoice_items"]), api)
    record_results(connection, "run-2", objects["invoice_items"], outcome.results)
    [failed] = outcome.results
    assert failed.status == "failed" and failed.in_doubt and failed.operation == "create"
    assert fakes.stripe.created["invoiceitem"] == 1

    # Before run 3 the warehouse changed the amount; the in-doubt create must not be re-minted.
    fakes.set_faults(rate=0.0, methods=[])
    _model(connection, "sync_stripe__invoice_items", {"inv-1:api": _item(1500)})
    plan = load_plan(connection, objects["invoice_items"])
    assert plan.pending[0].pinned_create.idempotency_key == failed.idempotency_key
    outcome = stripe_api.push(plan, api)
    record_results(connection, "run-3", objects["invoice_items"], outcome.results)

    assert [(r.operation, r.status) for r in outcome.results] == [
        ("create", "synced"),
        ("update", "synced"),
    ]
    assert fakes.stripe.created["invoiceitem"] == 1 and fakes.stripe.updated["invoiceitem"] == 1
    [item] = fakes.stripe.objects["invoiceitem"].values()
    assert item["amount"] == 1500
    assert load_plan(connection, objects["invoice_items"]).pending == ()


def test_stripe_keys_are_deterministic_per_row_payload_and_version():
    key = stripe_api.idempotency_key("invoice_items", "inv-1:api", "create", "abc", 0)
    assert key == stripe_api.idempotency_key("invoice_items", "inv-1:api", "create", "abc", 0)
    assert key != stripe_api.idempotency_key("invoice_items", "inv-1:api", "create", "abd", 0)
    assert stripe_api.idempotency_key("invoice_items", "inv-1:api", "update", "abc", 1) != (
        stripe_api.idempotency_key("invoice_items", "inv-1:api", "update", "abc", 3)
    )


def test_salesforce_sends_batches_of_200_and_stops_at_the_org_limit(fakes, connection):
    env = fakes.environment()
    client = salesforce.SalesforceClient(
        login_url=env["SALESFORCE_LOGIN_URL"],
        client_id=env["SALESFORCE_CLIENT_ID"],
        client_secret=env["SALESFORCE_CLIENT_SECRET"],
        ca_bundle=env["SALESFORCE_CA_BUNDLE"],
        retry=FAST,
    )
    (accounts,) = sync_objects_from_manifest(
        {
            "nodes": {
                "a": _node(
                    "sync_salesforce__accounts",
                    destination="salesforce",
                    object="accounts",
                    sobject="Account",
                    external_id_field="Billing_Account_Id__c",
                )
            }
        }
    )
    rows = {
        f"acct_{i:03d}": {
            "attributes": {"type": "Account"},
            "Billing_Account_Id__c": f"acct_{i:03d}",
            "Name": f"A{i}",
        }
        for i in range(450)
    }
    _model(connection, "sync_salesforce__accounts", rows)
    # describe + the first batch fit in today's allocation; the second batch does not.
    fakes.salesforce.org.daily_api_limit = 2
    try:
        outcome = salesforce.push(load_plan(connection, accounts), client)
    finally:
        fakes.salesforce.org.daily_api_limit = 15000
    statuses = [r.status for r in outcome.results]
    assert statuses == ["synced"] * 200 + ["failed"] * 250
    assert all("REQUEST_LIMIT_EXCEEDED" in r.error for r in outcome.results[200:400])
    assert all(r.error == "not attempted: org API limit reached" for r in outcome.results[400:])
    record_results(connection, "run-1", accounts, outcome.results)

    outcome = salesforce.push(load_plan(connection, accounts), client)  # the next day

    assert len(outcome.results) == 250 and {r.status for r in outcome.results} == {"synced"}
    assert fakes.salesforce.created == {"Account": 450}
    assert outcome.stats["api_usage"].endswith("/15000")


def test_an_immutable_row_is_sent_until_it_syncs_then_never_again(connection):
    """Final invoices: a failed first push is retried; once synced, a changed payload (say a
    NetSuite item id changed in dbt vars) is reported, not sent, unless resend_all asks."""
    (invoices,) = sync_objects_from_manifest(
        {
            "nodes": {
                "i": _node(
                    "sync_netsuite__invoices",
                    destination="netsuite",
                    object="invoices",
                    record_type="invoice",
                    immutable=True,
                )
            }
        }
    )
    body = {"tranId": "2026-0001", "item": {"items": [{"item": {"id": "1001"}, "amount": "1.00"}]}}
    _model(connection, "sync_netsuite__invoices", {"inv-1": body})
    [row] = load_plan(connection, invoices).pending

    def result(status: str) -> RowResult:
        return RowResult(
            external_id="inv-1",
            payload_hash=row.payload_hash,
            payload=row.payload,
            operation="upsert",
            status=status,
            attempt=row.attempt,
            destination_id="101" if status == "synced" else None,
        )

    record_results(connection, "run-1", invoices, [result("failed")])
    assert [r.external_id for r in load_plan(connection, invoices).pending] == ["inv-1"]
    record_results(connection, "run-2", invoices, [result("synced")])
    assert load_plan(connection, invoices).pending == ()

    _model(connection, "sync_netsuite__invoices", {"inv-1": {**body, "memo": "changed"}})

    plan = load_plan(connection, invoices)
    assert plan.pending == () and plan.frozen_changed == ("inv-1",)
    [resent] = load_plan(connection, invoices, resend_all=True).pending
    assert resent.destination_id == "101"
    # The same object without `immutable` would send the change.
    mutable = SyncObject(**{**invoices.__dict__, "options": {"record_type": "invoice"}})
    assert [r.external_id for r in load_plan(connection, mutable).pending] == ["inv-1"]


def test_a_warehouse_built_by_an_earlier_version_is_named_not_a_binder_error(connection):
    """The documents a check reconciles against come from billing marts: a warehouse whose marts
    predate a column the reconciliation reads fails the load with what to do, not DuckDB's
    binder error alone."""
    payments = _object(
        "customer_payments",
        CUSTOMERS,
        _node(
            "sync_netsuite__customer_payments",
            destination="netsuite",
            object="customer_payments",
            record_type="customerpayment",
            after=["customers"],
            reconcile="payments",
        ),
    )
    _model(connection, "sync_netsuite__customer_payments", {})
    connection.execute("create schema billing")
    connection.execute(
        "create table billing.fct_invoice_payments (invoice_id varchar, currency varchar,"
        " amount_paid decimal(38,10), payment_status varchar, amount_due decimal(38,10),"
        " credited decimal(38,10))"  # no amount_paid_minor: built before it existed
    )
    with pytest.raises(SyncModelMissing, match=r"amount_paid_minor.*billing_pipeline"):
        load_plan(connection, payments)


def test_sync_report_says_when_there_is_no_sync_run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dagster_billing.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["sync-report"])

    assert result.exit_code == 1
    assert "no billing_sync run in this Dagster instance" in result.output
