"""The contract servers check what the vendors check: each rule is exercised over real HTTP, with
the real client where it can produce the request, with plain requests where only a broken client
would."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
import stripe
from requests_oauthlib import OAuth1

from dagster_billing.fakes import start_fakes
from dagster_billing.sync.netsuite import NetSuiteAuthError, NetSuiteClient
from dagster_billing.sync.push import FatalSyncError
from dagster_billing.sync.retry import PermanentError, RetriesExhausted, RetryPolicy
from dagster_billing.sync.salesforce import SalesforceAuthError, SalesforceClient
from dagster_billing.sync.stripe_api import StripeApi, StripeAuthError

FAST = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    running = start_fakes(tmp_path_factory.mktemp("fakes"), timeout_delay=1.0)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def clean(fakes):
    fakes.reset()
    fakes.set_faults(rate=0.0, methods=[])


# -- NetSuite --------------------------------------------------------------------------------------
def netsuite(fakes, **overrides) -> NetSuiteClient:
    env = fakes.environment()
    settings = {
        "account_id": env["NETSUITE_ACCOUNT_ID"],
        "consumer_key": env["NETSUITE_CONSUMER_KEY"],
        "consumer_secret": env["NETSUITE_CONSUMER_SECRET"],
        "token_id": env["NETSUITE_TOKEN_ID"],
        "token_secret": env["NETSUITE_TOKEN_SECRET"],
        "base_url": env["NETSUITE_BASE_URL"],
        "timeout_seconds": 0.5,
        "retry": FAST,
        **overrides,
    }
    return NetSuiteClient(**settings)


CUSTOMER = {"companyName": "Example Co.", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}


def _invoice(customer_id: str, *amounts: str) -> str:
    return json.dumps(
        {
            "entity": {"id": customer_id},
            "subsidiary": {"id": "1"},
            "tranDate": "2026-01-31",
            "item": {
                "items": [{"item": {"id": "1001"}, "quantity": "1", "amount": a} for a in amounts]
            },
        }
    )


def _two_customers_and_an_invoice(client: NetSuiteClient) -> tuple[str, str, str]:
    """Internal ids of customers acct_x and acct_y and of acct_x's invoice inv-1 (10.00)."""
    customer_id = client.upsert("customer", "acct_x", json.dumps(CUSTOMER)).internal_id
    other_id = client.upsert("customer", "acct_y", json.dumps(CUSTOMER)).internal_id
    invoice_id = client.upsert(
        "invoice", "inv-1", _invoice(customer_id, "10.00"), replace=("item",)
    ).internal_id
    return customer_id, other_id, invoice_id


@pytest.mark.parametrize(
    "override",
    [
        {"token_secret": "wrong"},
        {"consumer_secret": "wrong"},
        {"account_id": "7654321"},  # realm of another account
        {"token_id": "someone-else"},
    ],
)
def test_netsuite_recomputes_the_oauth_signature(fakes, override):
    with pytest.raises(NetSuiteAuthError, match="INVALID_LOGIN"):
        netsuite(fakes, **override).check_credentials()
    assert fakes.netsuite.requests == 1


def test_netsuite_signature_covers_url_and_query_and_nonces_are_single_use(fakes):
    env = fakes.environment()
    auth = OAuth1(
        env["NETSUITE_CONSUMER_KEY"],
        client_secret=env["NETSUITE_CONSUMER_SECRET"],
        resource_owner_key=env["NETSUITE_TOKEN_ID"],
        resource_owner_secret=env["NETSUITE_TOKEN_SECRET"],
        signature_method="HMAC-SHA256",
        realm=env["NETSUITE_ACCOUNT_ID"],
    )
    url = f"{env['NETSUITE_BASE_URL']}/services/rest/record/v1/customer"
    signed = requests.Request("GET", url, params={"limit": "1"}, auth=auth).prepare()
    session = requests.Session()
    assert session.send(signed).status_code == 200
    assert session.send(signed).status_code == 401  # same nonce again: replay
    tampered = requests.Request("GET", url, params={"limit": "2"}, auth=auth).prepare()
    tampered.url = tampered.url.replace("limit=2", "limit=5")
    response = session.send(tampered)
    assert response.status_code == 401
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    hmac_sha1 = OAuth1(
        env["NETSUITE_CONSUMER_KEY"],
        client_secret=env["NETSUITE_CONSUMER_SECRET"],
        resource_owner_key=env["NETSUITE_TOKEN_ID"],
        resource_owner_secret=env["NETSUITE_TOKEN_SECRET"],
        realm=env["NETSUITE_ACCOUNT_ID"],
    )
    assert session.get(url, auth=hmac_sha1).status_code == 401


def test_netsuite_upsert_creates_then_updates_by_external_id(fakes):
    client = netsuite(fakes)
    created = client.upsert("customer", "acct_x", json.dumps(CUSTOMER))
    updated = client.upsert(
        "customer", "acct_x", json.dumps({**CUSTOMER, "companyName": "Renamed"})
    )

    assert created.status == 204 and created.internal_id is not None
    assert updated.status == 204 and updated.internal_id is None  # no Location on update
    assert fakes.netsuite.created == {"customer": 1} and fakes.netsuite.updated == {"customer": 1}
    assert client.get("customer", "eid:acct_x")["companyName"] == "Renamed"
    assert client.get("customer", created.internal_id)["externalId"] == "acct_x"


def test_netsuite_appends_sublist_lines_unless_replace_is_asked(fakes):
    client = netsuite(fakes)
    customer_id = client.upsert("customer", "acct_x", json.dumps(CUSTOMER)).internal_id
    body = _invoice(customer_id, "10.00", "2.50")
    client.upsert("invoice", "inv-1", body, replace=("item",))
    client.upsert("invoice", "inv-1", body)  # NetSuite appends non-keyed sublist lines
    assert len(fakes.netsuite.record("invoice", "inv-1")["item"]) == 4
    client.upsert("invoice", "inv-1", body, replace=("item",))
    record = client.get("invoice", "eid:inv-1", expand=True)
    assert [line["amount"] for line in record["item"]["items"]] == [10, 2.5]
    assert str(record["total"]) == "12.50"


def test_netsuite_checks_references_required_fields_and_field_names(fakes):
    client = netsuite(fakes)
    with pytest.raises(PermanentError, match=r"Invalid Field Value 999 .*entity"):
        client.upsert("invoice", "inv-1", _invoice("999", "1.00"))
    with pytest.raises(PermanentError, match="Please enter value"):
        client.upsert("customer", "acct_y", json.dumps({"companyName": "No subsidiary"}))
    with pytest.raises(PermanentError, match="Invalid field name"):
        client.upsert("customer", "acct_y", json.dumps({**CUSTOMER, "compnyName": "typo"}))
    with pytest.raises(PermanentError, match="internal id"):
        client.upsert(
            "invoice",
            "inv-1",
            _invoice("1", "1.00").replace('{"id": "1"}', '{"externalId": "acct_x"}', 1),
        )
    with pytest.raises(PermanentError, match="not allow"):
        client.upsert("customer", "acct:y", json.dumps(CUSTOMER))
    customer_id = client.upsert("customer", "acct_x", json.dumps(CUSTOMER)).internal_id
    with pytest.raises(PermanentError, match=r"Invalid Field Value 999 .*item"):
        client.upsert("invoice", "inv-1", _invoice(customer_id, "1.00").replace('"1001"', '"999"'))
    assert fakes.netsuite.created == {"customer": 1}


def test_netsuite_credit_memo_must_come_from_an_existing_invoice(fakes):
    client = netsuite(fakes)
    customer_id = client.upsert("customer", "acct_x", json.dumps(CUSTOMER)).internal_id
    memo = json.loads(_invoice(customer_id, "5.00"))
    with pytest.raises(PermanentError, match="createdFrom"):
        client.upsert(
            "creditmemo",
            "cn-1",
            json.dumps({**memo, "createdFrom": {"id": "404"}}),
            replace=("item",),
        )
    invoice_id = client.upsert(
        "invoice", "inv-1", _invoice(customer_id, "10.00"), replace=("item",)
    ).internal_id
    client.upsert(
        "creditmemo",
        "cn-1",
        json.dumps({**memo, "createdFrom": {"id": invoice_id}}),
        replace=("item",),
    )
    assert fakes.netsuite.record("creditmemo", "cn-1")["total"] == 5


def test_netsuite_credit_memo_credits_its_own_customers_invoice_and_is_not_negative(fakes):
    client = netsuite(fakes)
    customer_id, other_id, invoice_id = _two_customers_and_an_invoice(client)
    memo = {**json.loads(_invoice(other_id, "5.00")), "createdFrom": {"id": invoice_id}}
    with pytest.raises(PermanentError, match="customer differs"):
        client.upsert("creditmemo", "cn-1", json.dumps(memo), replace=("item",))
    negative = {**json.loads(_invoice(customer_id, "-5.00")), "createdFrom": {"id": invoice_id}}
    with pytest.raises(PermanentError, match="total cannot be negative"):
        client.upsert("creditmemo", "cn-1", json.dumps(negative), replace=("item",))
    with pytest.raises(PermanentError, match="total cannot be negative"):
        client.upsert("invoice", "inv-2", _invoice(customer_id, "3.00", "-4.00"), replace=("item",))
    # A negative line is fine while the total is not (a coupon on an invoice).
    client.upsert("invoice", "inv-3", _invoice(customer_id, "5.00", "-4.00"), replace=("item",))
    with pytest.raises(PermanentError, match="Invalid field name"):
        client.upsert(
            "creditmemo", "cn-1", json.dumps({**negative, "tranid": "CN-1"}), replace=("item",)
        )
    ok = {**json.loads(_invoice(customer_id, "5.00")), "createdFrom": {"id": invoice_id}}
    client.upsert("creditmemo", "cn-1", json.dumps({**ok, "tranId": "CN-2026-0001"}))
    assert fakes.netsuite.record("creditmemo", "cn-1")["tranId"] == "CN-2026-0001"
    assert fakes.netsuite.created == {"customer": 2, "invoice": 2, "creditmemo": 1}


def _payment(customer_id: str, payment: str, *applied: tuple[str, str]) -> str:
    items = [{"doc": {"id": doc}, "apply": True, "amount": amount} for doc, amount in applied]
    return json.dumps(
        {"customer": {"id": customer_id}, "payment": payment, "apply": {"items": items}}
    )


def test_netsuite_invoice_is_paid_in_full_by_customer_payments_applied_to_it(fakes):
    """No writable status: an invoice is Open until payments applied to it (less credit memos
    created from it) cover its total, then Paid In Full. The apply sublist is keyed by doc."""
    client = netsuite(fakes)
    customer_id, other_id, invoice_id = _two_customers_and_an_invoice(client)
    memo = {**json.loads(_invoice(customer_id, "2.50")), "createdFrom": {"id": invoice_id}}
    client.upsert("creditmemo", "cn-1", json.dumps(memo), replace=("item",))

    def balance() -> tuple:
        invoice = client.get("invoice", "eid:inv-1")
        return invoice["status"]["refName"], invoice["amountPaid"], invoice["amountRemaining"]

    assert balance() == ("Open", Decimal("0"), Decimal("7.50"))
    for refused, match in [
        (_payment(other_id, "7.50", (invoice_id, "7.50")), "not an open invoice"),
        (_payment(customer_id, "9.00", (invoice_id, "7.51")), "at most the amount due"),
        (_payment(customer_id, "5.00", (invoice_id, "7.50")), "exceeds the payment"),
        (_payment(customer_id, "7.50", ("404", "7.50")), "Invalid Field Value 404"),
    ]:
        with pytest.raises(PermanentError, match=match):
            client.upsert("customerpayment", "pay-inv-1", refused)
    client.upsert(
        "customerpayment", "pay-inv-1", _payment(customer_id, "5.00", (invoice_id, "5.00"))
    )
    assert balance() == ("Open", Decimal("5.00"), Decimal("2.50"))
    # Upserting it again with the full amount replaces its line for that invoice (keyed by doc).
    client.upsert(
        "customerpayment", "pay-inv-1", _payment(customer_id, "7.50", (invoice_id, "7.50"))
    )
    assert balance() == ("Paid In Full", Decimal("7.50"), Decimal("0"))
    assert len(fakes.netsuite.record("customerpayment", "pay-inv-1")["apply"]) == 1
    with pytest.raises(PermanentError, match="at most the amount due"):  # nothing left to apply
        client.upsert(
            "customerpayment", "pay-2", _payment(customer_id, "1.00", (invoice_id, "1.00"))
        )
    assert fakes.netsuite.created["customerpayment"] == 1


def test_netsuite_concurrency_limit_and_retries(fakes):
    fakes.netsuite.in_flight = fakes.netsuite.account.concurrency_limit  # the account is busy
    client = netsuite(fakes)
    with pytest.raises(RetriesExhausted) as raised:
        client.check_credentials()
    assert raised.value.attempts == FAST.max_attempts and raised.value.last.status == 429
    fakes.netsuite.in_flight = 0
    fakes.set_faults(rate=1.0, kinds=["500"])
    with pytest.raises(RetriesExhausted, match="UNEXPECTED_ERROR"):
        client.upsert("customer", "acct_x", json.dumps(CUSTOMER))
    assert fakes.netsuite.created == {}


def test_netsuite_reads_run_concurrently_and_the_accounts_limit_holds_them_back(fakes, monkeypatch):
    """`get_many` (reconciliation's reads) sends `concurrency` requests at a time. The server
    takes each request a while, as NetSuite does, so they overlap; a client that asks for more
    than the account's limit has the rest refused with 429 and retried until all are read."""
    external_ids = [f"acct_{n}" for n in range(9)]
    seeding = netsuite(fakes)
    for external_id in external_ids:
        seeding.upsert("customer", external_id, json.dumps(CUSTOMER))
    monkeypatch.setattr(fakes.netsuite.account, "latency_seconds", 0.2)
    limit = fakes.netsuite.account.concurrency_limit
    keys = [f"eid:{external_id}" for external_id in external_ids]
    patient = RetryPolicy(max_attempts=60, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)

    within = netsuite(fakes, concurrency=3, timeout_seconds=10.0, retry=patient)
    records = within.get_many("customer", [*keys, "eid:acct_nobody"])
    assert sorted(records) == sorted(keys)  # a key NetSuite does not have is left out
    assert {r["externalId"] for r in records.values()} == set(external_ids)
    assert (fakes.netsuite.peak_in_flight, fakes.netsuite.refused_busy) == (3, 0)

    greedy = netsuite(fakes, concurrency=limit + 3, timeout_seconds=10.0, retry=patient)
    assert sorted(greedy.get_many("customer", keys)) == sorted(keys)
    assert fakes.netsuite.peak_in_flight == limit
    assert fakes.netsuite.refused_busy > 0
    assert greedy.counter.stats()["retried_requests"] == fakes.netsuite.refused_busy


# -- Salesforce ------------------------------------------------------------------------------------
def salesforce(fakes, **overrides) -> SalesforceClient:
    env = fakes.environment()
    settings = {
        "login_url": env["SALESFORCE_LOGIN_URL"],
        "client_id": env["SALESFORCE_CLIENT_ID"],
        "client_secret": env["SALESFORCE_CLIENT_SECRET"],
        "ca_bundle": env["SALESFORCE_CA_BUNDLE"],
        "timeout_seconds": 0.5,
        "retry": FAST,
        **overrides,
    }
    return SalesforceClient(**settings)


def _account(external_id: str, **fields) -> str:
    return json.dumps(
        {
            "attributes": {"type": "Account"},
            "Billing_Account_Id__c": external_id,
            "Name": external_id,
            **fields,
        }
    )


def test_salesforce_is_https_only_with_its_own_ca(fakes):
    url = f"{fakes.urls['salesforce']}/services/oauth2/token"
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace verify=
    with pytest.raises(requests.exceptions.SSLError):
        session.post(url, data={"grant_type": "client_credentials"})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url.replace("https://", "http://"), timeout=2)


def test_salesforce_token_endpoint_refuses_bad_client_credentials(fakes):
    with pytest.raises(SalesforceAuthError, match="invalid_client"):
        salesforce(fakes, client_secret="wrong").connect()
    client = salesforce(fakes)
    client.connect()
    assert client.sf.base_url.startswith(fakes.urls["salesforce"])
    # Overloaded, the token endpoint answers in OAuth's error format (never REST's
    # REQUEST_LIMIT_EXCEEDED list, which counts API calls): a 500 the client retries.
    fakes.set_faults(rate=1.0, kinds=["limit"])
    with pytest.raises(FatalSyncError, match="token endpoint unreachable"):
        salesforce(fakes).connect()
    assert fakes.salesforce.faults.injected["limit"] == FAST.max_attempts


def test_salesforce_collections_upsert_reports_per_record_and_created_flags(fakes):
    client = salesforce(fakes)
    results, _ = client.upsert_collection(
        "Account",
        "Billing_Account_Id__c",
        [_account("a1"), _account("a2", Billing_Email__c="not-an-email")],
    )
    assert [r["success"] for r in results] == [True, False]
    assert results[0]["created"] is True
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    again, _ = client.upsert_collection(
        "Account", "Billing_Account_Id__c", [_account("a1", Invoice_Count__c=2)]
    )
    assert again[0] == {"id": results[0]["id"], "success": True, "errors": [], "created": False}
    assert client.api_usage() == f"{fakes.salesforce.api_calls}/15000"


def test_salesforce_single_record_upsert_answers_201_then_200(fakes):
    sf = salesforce(fakes).connect()
    assert sf.Account.upsert("Billing_Account_Id__c/a1", {"Name": "A1"}) == 201
    assert sf.Account.upsert("Billing_Account_Id__c/a1", {"Name": "A1 renamed"}) == 200
    assert fakes.salesforce.find("Account", "Billing_Account_Id__c", "a1")["Name"] == "A1 renamed"
    assert fakes.salesforce.created == {"Account": 1} and fakes.salesforce.updated == {"Account": 1}


def test_salesforce_validates_against_the_describe_contract(fakes):
    client = salesforce(fakes)
    with pytest.raises(PermanentError, match="INVALID_FIELD: No such column 'Bogus__c'"):
        client.upsert_collection("Account", "Billing_Account_Id__c", [_account("a1", Bogus__c=1)])
    too_long = _account("a1", Billing_Currency__c="DOLLARS")
    missing_parent = json.dumps(
        {
            "attributes": {"type": "Billing_Invoice__c"},
            "External_Id__c": "inv-1",
            "Name": "inv-1",
            "Account__r": {"Billing_Account_Id__c": "nobody"},
        }
    )
    no_account = json.dumps(
        {"attributes": {"type": "Billing_Invoice__c"}, "External_Id__c": "inv-2", "Name": "inv-2"}
    )
    out_of_range = _account("a3", Lifetime_Billed__c="123456789012345.00")
    results, _ = client.upsert_collection(
        "Account", "Billing_Account_Id__c", [too_long, out_of_range]
    )
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "STRING_TOO_LONG",
        "NUMBER_OUTSIDE_VALID_RANGE",
    ]
    results, _ = client.upsert_collection(
        "Billing_Invoice__c", "External_Id__c", [missing_parent, no_account]
    )
    assert results[0]["errors"][0]["message"].startswith(
        "Foreign key external ID: nobody not found"
    )
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert fakes.salesforce.created == {}


def test_salesforce_collections_limits_and_shape(fakes):
    client = salesforce(fakes)
    with pytest.raises(ValueError, match="200"):
        client.upsert_collection(
            "Account", "Billing_Account_Id__c", [_account(f"a{i}") for i in range(201)]
        )
    session = client.sf.session
    url = f"{client.sf.base_url}composite/sobjects/Account/Billing_Account_Id__c"
    body = {"allOrNone": False, "records": [json.loads(_account(f"a{i}")) for i in range(201)]}
    response = session.patch(url, json=body, headers=client.sf.headers)
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    body = {"records": [{"Billing_Account_Id__c": "a1", "Name": "no attributes"}]}
    assert (
        session.patch(url, json=body, headers=client.sf.headers).json()[0]["errorCode"]
        == "INVALID_TYPE"
    )
    old = url.replace("/v62.0/", "/v45.0/")
    assert session.patch(old, json={"records": []}, headers=client.sf.headers).status_code == 404
    assert "Sforce-Limit-Info" in response.headers


def test_salesforce_all_or_none_rolls_back_everything(fakes):
    client = salesforce(fakes)
    url = f"{client.sf.base_url}composite/sobjects/Account/Billing_Account_Id__c"
    body = {
        "allOrNone": True,
        "records": [json.loads(_account("a1")), json.loads(_account("a2", Billing_Email__c="bad"))],
    }
    results = client.sf.session.patch(url, json=body, headers=client.sf.headers).json()
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert fakes.salesforce.records["Account"] == {} and fakes.salesforce.created == {}


def test_salesforce_request_limit_and_expired_sessions(fakes):
    client = salesforce(fakes)
    client.describe("Account")
    fakes.salesforce.expire_tokens()
    client.describe("Account")  # 401 INVALID_SESSION_ID: a new token is fetched, once
    fakes.salesforce.org.daily_api_limit = fakes.salesforce.api_calls
    try:
        with pytest.raises(RetriesExhausted, match="REQUEST_LIMIT_EXCEEDED") as raised:
            client.describe("Account")
        assert raised.value.last.status == 403
    finally:
        fakes.salesforce.org.daily_api_limit = 15000


# -- Stripe ----------------------------------------------------------------------------------------
def stripe_api(fakes, **overrides) -> StripeApi:
    env = fakes.environment()
    settings = {
        "api_key": env["STRIPE_API_KEY"],
        "api_base": env["STRIPE_API_BASE"],
        "timeout_seconds": 0.5,
        "retry": FAST,
        **overrides,
    }
    return StripeApi(**settings)


def _raw_stripe(
    fakes, path: str, data: dict | str, key: str | None = None, api_key: str | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {api_key or fakes.stripe.account.api_key}"}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(f"{fakes.urls['stripe']}{path}", data=data, headers=headers, timeout=5)


def test_stripe_checks_the_api_key(fakes):
    with pytest.raises(StripeAuthError, match="Invalid API Key"):
        stripe_api(fakes, api_key="sk_test_wrong").check_credentials()
    assert (
        _raw_stripe(fakes, "/v1/customers", {"name": "x"}, api_key="sk_test_wrong").status_code
        == 401
    )


def test_stripe_decodes_brackets_and_checks_params_against_the_sdk_types(fakes):
    customer = _raw_stripe(
        fakes, "/v1/customers", {"name": "X", "metadata[billing_account_id]": "acct_x"}
    ).json()
    assert customer["metadata"] == {"billing_account_id": "acct_x"}
    base = {"customer": customer["id"], "currency": "usd", "period[start]": "1", "period[end]": "2"}
    cases = {
        "parameter_invalid_integer": {**base, "amount": "12.34"},
        "parameter_unknown": {**base, "amout": "1234"},
        "parameter_missing": {**base, "amount": "1", "period[end]": None},
    }
    for code, data in cases.items():
        error = _raw_stripe(
            fakes, "/v1/invoiceitems", {k: v for k, v in data.items() if v is not None}
        ).json()["error"]
        assert error["code"] == code, error
    good = _raw_stripe(fakes, "/v1/invoiceitems", {**base, "amount": "1234"}).json()
    assert good["amount"] == 1234 and good["period"] == {"start": 1, "end": 2}
    other = _raw_stripe(
        fakes, "/v1/invoiceitems", {**base, "amount": "5", "currency": "eur"}
    ).json()["error"]
    assert "cannot combine currencies" in other["message"]
    update = _raw_stripe(
        fakes, f"/v1/invoiceitems/{good['id']}", {"customer": customer["id"], "amount": "1"}
    ).json()
    assert (
        update["error"]["code"] == "parameter_unknown"
    )  # an invoice item's customer cannot change


def test_stripe_lists_page_with_starting_after(fakes):
    for i in range(130):
        _raw_stripe(fakes, "/v1/customers", {"name": f"C{i}"})
    listed = stripe_api(fakes).list_all("customers")
    assert len({c["id"] for c in listed}) == 130
    assert fakes.stripe.requests == 130 + 2  # two pages of at most 100


def test_stripe_idempotency_replays_and_refuses_different_parameters(fakes):
    first = _raw_stripe(fakes, "/v1/customers", {"name": "X"}, key="k-1")
    replay = _raw_stripe(fakes, "/v1/customers", {"name": "X"}, key="k-1")
    other = _raw_stripe(fakes, "/v1/customers", {"name": "Y"}, key="k-1")
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    invalid = _raw_stripe(fakes, "/v1/customers", {"nme": "X"}, key="k-2")
    valid = _raw_stripe(fakes, "/v1/customers", {"name": "X"}, key="k-2")
    assert (
        invalid.status_code == 400 and valid.status_code == 200
    )  # failed validation stores nothing
    assert fakes.stripe.created == {"customer": 2}


def test_stripe_rate_limits_with_and_without_should_retry(fakes):
    env = fakes.environment()
    fakes.set_faults(rate=1.0, kinds=["429"])
    plain_sdk = stripe.StripeClient(
        env["STRIPE_API_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]}, max_network_retries=2
    )
    with pytest.raises(stripe.RateLimitError):
        plain_sdk.v1.customers.list()
    assert fakes.stripe.requests == 1  # stripe-python does not retry a bare 429 ...
    with pytest.raises(RetriesExhausted):
        stripe_api(fakes).check_credentials()
    assert fakes.stripe.requests == 1 + FAST.max_attempts  # ... our client does
    fakes.set_faults(rate=1.0, kinds=["429_should_retry"])
    with pytest.raises(stripe.RateLimitError):
        plain_sdk.v1.customers.list()
    assert fakes.stripe.requests == 1 + FAST.max_attempts + 3  # with the hint, the SDK retries too


def test_stripe_timeout_after_create_is_answered_from_the_idempotency_store(fakes):
    api = stripe_api(
        fakes,
        retry=RetryPolicy(max_attempts=4, initial_backoff_seconds=0.01, max_backoff_seconds=0.02),
    )
    fakes.set_faults(rate=1.0, kinds=["timeout"], timeout_delay=1.0)
    with pytest.raises(RetriesExhausted):
        api.create("customers", {"name": "X"}, "create-acct_x")
    assert fakes.stripe.created == {"customer": 1} and fakes.stripe.replayed == 3
    fakes.set_faults(rate=0.0)
    customer, attempts = api.create("customers", {"name": "X"}, "create-acct_x")
    assert attempts == 1 and fakes.stripe.created == {"customer": 1} and fakes.stripe.replayed == 4
    assert list(fakes.stripe.objects["customer"]) == [customer["id"]]


def test_billing_fakes_run_points_a_command_at_the_servers(tmp_path):
    import sys

    from click.testing import CliRunner

    from dagster_billing.cli import main

    script = (
        "import os, requests; "
        "r = requests.get(os.environ['STRIPE_API_BASE'] + '/v1/customers', "
        "auth=(os.environ['STRIPE_API_KEY'], '')); "
        "assert r.status_code == 200, r.text; "
        "assert os.path.exists(os.environ['SALESFORCE_CA_BUNDLE'])"
    )
    ports = ["--netsuite-port", "0", "--salesforce-port", "0", "--stripe-port", "0"]
    result = CliRunner().invoke(
        main,
        ["fakes", "run", *ports, "--state-dir", str(tmp_path), "--", sys.executable, "-c", script],
    )
    assert result.exit_code == 0, result.output
    assert '"stripe": {\n    "requests": 1' in result.output


def test_stripe_invoices_move_draft_open_paid_and_refuse_other_transitions(fakes):
    customer = _raw_stripe(fakes, "/v1/customers", {"name": "X"}).json()["id"]
    missing_due = _raw_stripe(
        fakes, "/v1/invoices", {"customer": customer, "collection_method": "send_invoice"}
    ).json()["error"]
    assert missing_due["code"] == "parameter_missing"
    pending = _raw_stripe(
        fakes, "/v1/invoiceitems", {"customer": customer, "amount": "99", "currency": "usd"}
    ).json()
    api = stripe_api(fakes)
    draft, _ = api.create(
        "invoices",
        {"customer": customer, "collection_method": "send_invoice", "due_date": 1771545599,
         "currency": "usd", "number": "2026-0001", "metadata": {"billing_invoice_id": "inv-1"}},
        "inv-1-create",
    )  # fmt: skip
    item, _ = api.create(
        "invoice_items",
        {"customer": customer, "amount": 1250, "currency": "usd", "invoice": draft["id"]},
        "inv-1-item-1",
    )
    invoice = api.retrieve("invoices", draft["id"])
    # pending_invoice_items_behavior defaults to exclude: the pending item stays out.
    assert (invoice["status"], invoice["amount_due"], invoice["lines"]["total_count"]) == (
        "draft",
        1250,
        1,
    )
    assert fakes.stripe.objects["invoiceitem"][pending["id"]]["invoice"] is None
    opened = api.finalize_invoice(draft["id"], "inv-1-finalize")
    assert (opened["status"], opened["number"], opened["due_date"]) == (
        "open",
        "2026-0001",
        1771545599,
    )
    late = _raw_stripe(
        fakes,
        "/v1/invoiceitems",
        {"customer": customer, "amount": "1", "currency": "usd", "invoice": draft["id"]},
    ).json()["error"]
    assert "only add invoice items to draft invoices" in late["message"]
    again = _raw_stripe(fakes, f"/v1/invoices/{draft['id']}/finalize", {}).json()["error"]
    assert again["type"] == "invalid_request_error"
    client = stripe.StripeClient(
        fakes.stripe.account.api_key, base_addresses={"api": fakes.urls["stripe"]}
    )
    paid = client.v1.invoices.pay(draft["id"], params={"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 1250, 0)
    assert paid.status_transitions.paid_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(draft["id"])
    assert item["invoice"] == draft["id"]


# -- between runs ----------------------------------------------------------------------------------
def test_servers_started_to_persist_hold_their_records_and_keys_across_a_restart(tmp_path):
    """`billing fakes serve` / `run` keep what the servers hold, as a vendor's system does between
    two syncs: records (decimals exact), the ids after them, Stripe's idempotency keys. Started
    without `persist` (tests, `--fresh`), they hold nothing."""
    first = start_fakes(tmp_path, persist=True)
    try:
        client = netsuite(first)
        customer_id = client.upsert("customer", "acct_x", json.dumps(CUSTOMER)).internal_id
        client.close()
        fakes_salesforce = first.salesforce
        created = _raw_stripe(first, "/v1/customers", {"name": "X"}, key="k-1").json()
        amount = Decimal("1234.5678")
        fakes_salesforce.records["Account"]["001X"] = {"Id": "001X", "Lifetime_Billed__c": amount}
    finally:
        first.stop()

    # A file from a server that knew fewer record types: the others start empty.
    kept = tmp_path / "records" / "netsuite.json"
    older = json.loads(kept.read_text())
    for by_type in (older["records"], older["by_external_id"]):
        del by_type["creditmemo"]
    kept.write_text(json.dumps(older))

    again = start_fakes(tmp_path, persist=True)
    try:
        assert again.netsuite.records["creditmemo"] == {}
        assert again.netsuite.record("customer", "acct_x")["id"] == customer_id
        client = netsuite(again)
        assert client.upsert("customer", "acct_y", json.dumps(CUSTOMER)).internal_id != customer_id
        client.close()
        assert again.salesforce.records["Account"]["001X"]["Lifetime_Billed__c"] == amount
        replayed = _raw_stripe(again, "/v1/customers", {"name": "X"}, key="k-1")
        assert replayed.json()["id"] == created["id"]
        assert _raw_stripe(again, "/v1/customers", {"name": "Y"}).json()["id"] != created["id"]
        assert len(again.stripe.objects["customer"]) == 2
    finally:
        again.stop()

    empty = start_fakes(tmp_path)
    try:
        assert empty.netsuite.record("customer", "acct_x") is None
        assert empty.stripe.objects["customer"] == {}
    finally:
        empty.stop()
