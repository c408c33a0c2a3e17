"""NetSuite SuiteTalk REST web services: a small client on requests + requests-oauthlib, and the push.

Contract (Oracle NetSuite Help Center):
- Upsert: `PUT /services/rest/record/v1/{type}/eid:{externalId}` creates or updates the record
  with that external id; 204 No Content, a new record's URL in `Location` ("Using the Upsert
  Operation", https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_156335203191.html).
  External ids: letters, digits, `_` and `-` ("Using External IDs", section_156334828635.html).
- Sublists: on update, lines of a non-keyed sublist such as `item` are added to the existing
  ones; `?replace=item` replaces them ("Working with Sublists", chapter_1545142407.html). Every
  push of an invoice therefore sends `replace=item`, so a re-sent invoice keeps its line count.
- Auth: token-based authentication, OAuth 1.0 with HMAC-SHA256 and `realm` = account id
  ("The Authorization Headers", section_1534941295.html; HMAC-SHA1 is no longer supported).
- Errors: `{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode", "o:errorPath"}]}`
  ("Error Handling in REST Web Services", section_156570709583.html). 401 INVALID_LOGIN is fatal.
  Concurrency governance rejects requests above the account limit; for REST that surfaces as
  HTTP 429 Too Many Requests (Oracle, "NetSuite AI Connector Service And Concurrency
  Governance"; SSS_REQUEST_LIMIT_EXCEEDED for RESTlets and WS_REQUEST_BLOCKED for SOAP), so those
  codes and 429/5xx/timeouts are retried with backoff.
- References in bodies use internal ids (`{"id": "107"}`, Oracle's own examples); the payload's
  `{"externalId": ...}` references are resolved from the sync ledger before sending.
- `X-NetSuite-PropertyNameValidation: Error` makes NetSuite reject unknown fields instead of
  silently dropping them.

There is no bulk write in the record service ("REST web services do not support ... the bulk
creation of records"): one record per request, sequentially (accounts allow few concurrent
requests). Reads of many records (reconciliation) run `concurrency` at a time: the share of the
account's concurrency limit (5 on the shared tier without SuiteCloud Plus; "Concurrency
Governance Limits Based on Service Tiers and SuiteCloud Plus Licenses") this integration may
take, 1 unless configured (NETSUITE_CONCURRENCY).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from dagster_billing.sync.push import (
    FAILED,
    SYNCED,
    FatalSyncError,
    MissingReference,
    PendingRow,
    PushOutcome,
    RowResult,
    SyncPlan,
    dump_payload,
    not_attempted,
    parse_payload,
    resolve_references,
)
from dagster_billing.sync.retry import (
    DEFAULT_RETRY,
    PermanentError,
    RequestCounter,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    call_with_retries,
    retry_after_seconds,
)

RECORD_PATH = "/services/rest/record/v1"
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")
CONCURRENCY_CODES = {
    "CONCURRENCY_LIMIT_EXCEEDED",
    "SSS_REQUEST_LIMIT_EXCEEDED",
    "WS_REQUEST_BLOCKED",
}


class NetSuiteAuthError(FatalSyncError):
    pass


@dataclass(frozen=True)
class UpsertResponse:
    status: int
    internal_id: str | None
    attempts: int


def default_base_url(account_id: str) -> str:
    """https://<account>.suitetalk.api.netsuite.com: lower case, `_` -> `-` (123456_SB1 -> 123456-sb1)."""
    return f"https://{account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


def _error_details(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
        detail = body["o:errorDetails"][0]
        path = detail.get("o:errorPath")
        message = detail.get("detail", "")
        if path:
            message = f"{message} (at {path})"
        return detail.get("o:errorCode"), message
    except (ValueError, KeyError, IndexError, TypeError):
        return None, response.text[:500]


class NetSuiteClient:
    def __init__(
        self,
        *,
        account_id: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        ca_bundle: str | None = None,
        concurrency: int = 1,
    ) -> None:
        self.base_url = (base_url or default_base_url(account_id)).rstrip("/")
        self.timeout = timeout_seconds
        self.retry = retry
        self.concurrency = max(1, concurrency)
        self.counter = RequestCounter()
        self.session = requests.Session()
        if ca_bundle:
            # requests lets REQUESTS_CA_BUNDLE from the environment override Session.verify.
            self.session.trust_env = False
            self.session.verify = ca_bundle
        self.session.auth = OAuth1(
            consumer_key,
            client_secret=consumer_secret,
            resource_owner_key=token_id,
            resource_owner_secret=token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=account_id,
        )
        self.session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-NetSuite-PropertyNameValidation": "Error",
            }
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs
            )
        except requests.Timeout as error:
            raise TransientError(f"timeout: {error}", in_doubt=True) from error
        except requests.ConnectionError as error:
            raise TransientError(f"connection error: {error}", in_doubt=True) from error
        if response.status_code < 300:
            return response
        code, message = _error_details(response)
        status = response.status_code
        text = f"HTTP {status} {code or ''}: {message}".replace("  ", " ")
        if status == 401:
            raise NetSuiteAuthError(
                f"NetSuite rejected the credentials ({text}). Check NETSUITE_ACCOUNT_ID and the "
                "token; under heavy concurrency NetSuite has also been reported to answer 401."
            )
        if status == 429 or code in CONCURRENCY_CODES:
            raise TransientError(
                text,
                status=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise TransientError(text, status=status, in_doubt=True)
        raise PermanentError(text, status=status)

    def check_credentials(self) -> None:
        """One cheap authenticated read; raises NetSuiteAuthError before anything is written."""
        call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._request("GET", f"{RECORD_PATH}/customer", params={"limit": 1}),
        )

    def upsert(
        self, record_type: str, external_id: str, body: str, replace: tuple[str, ...] = ()
    ) -> UpsertResponse:
        if not EXTERNAL_ID.match(external_id):
            raise PermanentError(
                f"external id {external_id!r} has characters NetSuite does not allow in eid:"
            )
        params = {"replace": ",".join(replace)} if replace else None
        path = f"{RECORD_PATH}/{record_type}/eid:{external_id}"
        attempted = call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._request("PUT", path, params=params, data=body.encode("utf-8")),
        )
        response = attempted.value
        location = response.headers.get("Location")
        internal_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1] if location else None
        return UpsertResponse(response.status_code, internal_id, attempted.attempts)

    def get(self, record_type: str, key: str, *, expand: bool = False) -> dict | None:
        """A record by internal id or `eid:<external id>`; None when it does not exist."""
        params = {"expandSubResources": "true"} if expand else None

        def fetch() -> dict | None:
            try:
                response = self._request("GET", f"{RECORD_PATH}/{record_type}/{key}", params=params)
            except PermanentError as error:
                if error.status == 404:
                    return None
                raise
            return response.json(parse_float=Decimal)

        return call_with_retries(self.retry, counter=self.counter, call=fetch).value

    def get_many(
        self, record_type: str, keys: Iterable[str], *, expand: bool = False
    ) -> dict[str, dict]:
        """Records by key (as `get`), `concurrency` requests at a time; keys NetSuite does not
        have are left out. The first error stops the reads not yet started and is raised."""
        keys = list(keys)
        fetch = functools.partial(self.get, record_type, expand=expand)
        if self.concurrency == 1 or len(keys) < 2:
            records = [fetch(key) for key in keys]
        else:
            pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="netsuite-read")
            try:
                records = list(pool.map(fetch, keys))
            finally:
                pool.shutdown(cancel_futures=True)
        return {
            key: record for key, record in zip(keys, records, strict=True) if record is not None
        }

    def close(self) -> None:
        self.session.close()


def netsuite_reference(_value: Any, internal_id: str) -> dict[str, str]:
    """A reference field as NetSuite takes it (and returns it, with more keys): the internal id."""
    return {"id": internal_id}


def push(plan: SyncPlan, client: NetSuiteClient) -> PushOutcome:
    """Upsert every pending row, one request each, in external id order."""
    sync_object = plan.sync_object
    record_type = sync_object.option("record_type")
    replace = tuple(sync_object.option("replace_sublists") or ())
    try:
        client.check_credentials()
    except RetriesExhausted as error:
        raise FatalSyncError(f"NetSuite is not reachable at {client.base_url}: {error}") from error
    results: list[RowResult] = []
    for index, row in enumerate(plan.pending):
        try:
            results.append(_push_row(plan, client, row, record_type, replace))
        except NetSuiteAuthError as error:
            results += [
                not_attempted(r, "not attempted: run stopped") for r in plan.pending[index:]
            ]
            return PushOutcome(tuple(results), fatal_error=str(error), stats=client.counter.stats())
    return PushOutcome(tuple(results), stats=client.counter.stats())


def _push_row(
    plan: SyncPlan,
    client: NetSuiteClient,
    row: PendingRow,
    record_type: str,
    replace: tuple[str, ...],
) -> RowResult:
    base = {
        "external_id": row.external_id,
        "payload_hash": row.payload_hash,
        "payload": row.payload,
        "operation": "upsert",
        "attempt": row.attempt,
    }
    try:
        body = row.payload
        if plan.sync_object.references:
            body = dump_payload(
                resolve_references(
                    parse_payload(row.payload),
                    plan.sync_object.references,
                    plan.reference_ids,
                    netsuite_reference,
                )
            )
        response = client.upsert(record_type, row.external_id, body, replace)
        internal_id = response.internal_id or row.destination_id
        if internal_id is None:
            # An update answers without Location; learn the id once, for references to it.
            found = client.get(record_type, f"eid:{row.external_id}")
            internal_id = str(found["id"]) if found else None
        return RowResult(
            **base,
            status=SYNCED,
            http_attempts=response.attempts,
            destination_id=internal_id,
            response_code=response.status,
            created=response.internal_id is not None and row.destination_id is None,
        )
    except MissingReference as error:
        return RowResult(**base, status=FAILED, error=str(error))
    except PermanentError as error:
        return RowResult(
            **base,
            status=FAILED,
            http_attempts=error.attempts,
            response_code=error.status,
            error=str(error),
            destination_id=row.destination_id,
        )
    except RetriesExhausted as error:
        return RowResult(
            **base,
            status=FAILED,
            http_attempts=error.attempts,
            response_code=error.last.status,
            error=str(error),
            in_doubt=error.last.in_doubt,
            destination_id=row.destination_id,
        )


def invoice_figures(record: Mapping) -> tuple[int, Decimal]:
    """Line count and total of an invoice read with expandSubResources."""
    items = (record.get("item") or {}).get("items") or []
    return len(items), Decimal(record.get("total", 0))


def payment_figures(record: Mapping) -> tuple[int, Decimal]:
    """Applied lines and amount of a customer payment read with expandSubResources (the `apply`
    sublist lists every open invoice of the customer; `apply: true` marks the ones the payment
    pays)."""
    items = (record.get("apply") or {}).get("items") or []
    applied = [line for line in items if line.get("apply")]
    return len(applied), Decimal(record.get("payment", 0))


# What reconciliation reads of each record type: (line count, total). Its currency is a NetSuite
# internal id, not the warehouse's code: not compared.
RECORD_FIGURES = {
    "invoice": invoice_figures,
    "creditmemo": invoice_figures,
    "customerpayment": payment_figures,
}
