"""Salesforce: client-credentials token + simple-salesforce, sObject Collections upsert by external id.

Contract (Salesforce developer docs):
- Token: `POST {My Domain}/services/oauth2/token` with grant_type=client_credentials, client_id,
  client_secret; the response carries access_token and instance_url ("OAuth 2.0 Client
  Credentials Flow for Server-to-Server Integration"; Connect REST API quick start
  https://developer.salesforce.com/docs/atlas.en-us.chatterapi.meta/chatterapi/quickstart_connecting.htm).
  simple-salesforce hard-codes login hosts, so the token is fetched here from a configurable URL
  and handed to simple_salesforce.Salesforce(instance_url=..., session_id=...).
- Upsert: `PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}` with
  `{"allOrNone": false, "records": [...]}`: at most 200 records of one type, each with
  `attributes.type`, processed in order, one UpsertResult (`id`, `success`, `errors`, `created`)
  per record in the same order; 400 only when the request is malformed, otherwise 200 with
  per-record errors; API version 46.0 or later ("Upsert Records Using sObject Collections",
  https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html).
- Errors: a JSON array of `{message, errorCode, fields}`; 401 INVALID_SESSION_ID (token expired:
  fetch a new one), 403 REQUEST_LIMIT_EXCEEDED (org API limit), 5xx transient ("Status Codes and
  Error Responses", https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
  Every response reports usage in `Sforce-Limit-Info: api-usage=used/limit` ("Limit Info Header").
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from dagster_billing.sync.push import (
    FAILED,
    SYNCED,
    FatalSyncError,
    PushOutcome,
    RowResult,
    SyncPlan,
    not_attempted,
)
from dagster_billing.sync.retry import (
    DEFAULT_RETRY,
    PermanentError,
    RequestCounter,
    RetriesExhausted,
    RetryPolicy,
    TransientError,
    call_with_retries,
)

COLLECTION_LIMIT = 200
T = TypeVar("T")


class SalesforceAuthError(FatalSyncError):
    pass


def _error_codes(error: SalesforceError) -> list[str]:
    content = error.content
    if isinstance(content, list):
        return [item.get("errorCode", "") for item in content if isinstance(item, dict)]
    return []


def _describe_error(error: SalesforceError) -> str:
    content = error.content
    if isinstance(content, list):
        return "; ".join(
            f"{item.get('errorCode')}: {item.get('message')}"
            for item in content
            if isinstance(item, dict)
        )
    return str(content)[:500]


class SalesforceClient:
    def __init__(
        self,
        *,
        login_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "62.0",
        timeout_seconds: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        ca_bundle: str | None = None,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_version = api_version
        self.timeout = timeout_seconds
        self.retry = retry
        self.counter = RequestCounter()
        self.session = requests.Session()
        if ca_bundle:
            # requests lets REQUESTS_CA_BUNDLE from the environment override Session.verify.
            self.session.trust_env = False
            self.session.verify = ca_bundle
        self._sf: Salesforce | None = None

    # -- auth -----------------------------------------------------------------------------------
    def _fetch_token(self) -> dict[str, Any]:
        url = f"{self.login_url}/services/oauth2/token"
        try:
            response = self.session.post(
                url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            raise TransientError(f"token request timed out: {error}") from error
        except requests.ConnectionError as error:
            raise TransientError(f"token request failed: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"token request: HTTP {response.status_code}", status=response.status_code
            )
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            reason = (
                f"{body.get('error')}: {body.get('error_description')}"
                if isinstance(body, dict)
                else response.text[:200]
            )
            raise SalesforceAuthError(
                f"Salesforce refused the client credentials at {url} (HTTP "
                f"{response.status_code} {reason}). Check SALESFORCE_CLIENT_ID / _SECRET."
            )
        return response.json()

    def connect(self) -> Salesforce:
        try:
            token = call_with_retries(
                self.retry, counter=self.counter, call=self._fetch_token
            ).value
        except RetriesExhausted as error:
            raise FatalSyncError(f"Salesforce token endpoint unreachable: {error}") from error
        self._sf = Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            version=self.api_version,
            session=self.session,
            parse_float=Decimal,
            object_pairs_hook=dict,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.connect()

    # -- calls ----------------------------------------------------------------------------------
    def _call(self, request: Callable[[Salesforce], T]) -> T:
        """One REST call with error classification; an expired token is renewed once."""
        try:
            try:
                return request(self.sf)
            except SalesforceExpiredSession:
                self.connect()
                return request(self.sf)
        except SalesforceExpiredSession as error:
            raise SalesforceAuthError(
                f"Salesforce rejected a fresh token: {_describe_error(error)}"
            ) from error
        except SalesforceRefusedRequest as error:
            if "REQUEST_LIMIT_EXCEEDED" in _error_codes(error):
                raise TransientError(_describe_error(error), status=403) from error
            raise FatalSyncError(
                f"Salesforce refused the request: {_describe_error(error)}"
            ) from error
        except SalesforceResourceNotFound as error:
            raise FatalSyncError(f"Salesforce: not found: {_describe_error(error)}") from error
        except SalesforceMalformedRequest as error:
            raise PermanentError(_describe_error(error), status=400) from error
        except SalesforceGeneralError as error:
            if error.status >= 500:
                raise TransientError(
                    _describe_error(error), status=error.status, in_doubt=True
                ) from error
            raise PermanentError(_describe_error(error), status=error.status) from error
        except requests.Timeout as error:
            raise TransientError(f"timeout: {error}", in_doubt=True) from error
        except requests.ConnectionError as error:
            raise TransientError(f"connection error: {error}", in_doubt=True) from error

    def describe(self, sobject: str) -> dict[str, Any]:
        return call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._call(
                lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=self.timeout)
            ),
        ).value

    def upsert_collection(
        self, sobject: str, external_id_field: str, records: list[str]
    ) -> tuple[list[dict[str, Any]], int]:
        """Upsert up to 200 records (JSON texts), allOrNone=false; per-record results, attempts."""
        if len(records) > COLLECTION_LIMIT:
            raise ValueError(f"at most {COLLECTION_LIMIT} records per sObject Collections request")
        body = '{"allOrNone":false,"records":[' + ",".join(records) + "]}"
        path = f"composite/sobjects/{sobject}/{external_id_field}"
        attempted = call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._call(
                lambda sf: sf.restful(
                    path, method="PATCH", data=body.encode("utf-8"), timeout=self.timeout
                )
            ),
        )
        return attempted.value, attempted.attempts

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        return call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._call(lambda sf: sf.query_all(soql, timeout=self.timeout)["records"]),
        ).value

    def api_usage(self) -> str | None:
        usage = (self._sf.api_usage if self._sf else {}).get("api-usage")
        return f"{usage.used}/{usage.total}" if usage else None

    def close(self) -> None:
        self.session.close()


def _record_error(result: dict[str, Any]) -> str:
    return "; ".join(
        f"{error.get('statusCode')}: {error.get('message')}"
        + (f" ({', '.join(error['fields'])})" if error.get("fields") else "")
        for error in result.get("errors") or []
    )


def push(plan: SyncPlan, client: SalesforceClient) -> PushOutcome:
    """Upsert pending rows in Collections requests of 200, in external id order."""
    sync_object = plan.sync_object
    sobject = sync_object.option("sobject")
    external_id_field = sync_object.option("external_id_field")
    try:
        client.describe(sobject)
    except RetriesExhausted as error:
        raise FatalSyncError(f"Salesforce is not reachable: {error}") from error
    results: list[RowResult] = []
    pending = plan.pending
    for batch_start in range(0, len(pending), COLLECTION_LIMIT):
        batch = pending[batch_start : batch_start + COLLECTION_LIMIT]
        base = [
            {
                "external_id": row.external_id,
                "payload_hash": row.payload_hash,
                "payload": row.payload,
                "operation": "upsert",
                "attempt": row.attempt,
            }
            for row in batch
        ]
        try:
            records, attempts = client.upsert_collection(
                sobject, external_id_field, [row.payload for row in batch]
            )
        except FatalSyncError as error:
            results += [
                not_attempted(row, "not attempted: run stopped") for row in pending[batch_start:]
            ]
            return PushOutcome(tuple(results), fatal_error=str(error), stats=_stats(client))
        except PermanentError as error:
            results += [
                RowResult(
                    **b,
                    status=FAILED,
                    http_attempts=error.attempts,
                    response_code=error.status,
                    error=str(error),
                )
                for b in base
            ]
            continue
        except RetriesExhausted as error:
            results += [
                RowResult(
                    **b,
                    status=FAILED,
                    http_attempts=error.attempts,
                    response_code=error.last.status,
                    error=str(error),
                    in_doubt=error.last.in_doubt,
                )
                for b in base
            ]
            if error.last.status == 403:
                rest = pending[batch_start + len(batch) :]
                results += [
                    not_attempted(row, "not attempted: org API limit reached") for row in rest
                ]
                break
            continue
        if len(records) != len(batch):
            raise FatalSyncError(
                f"Salesforce returned {len(records)} results for {len(batch)} records"
            )
        for b, row, record in zip(base, batch, records, strict=True):
            if record.get("success"):
                results.append(
                    RowResult(
                        **b,
                        status=SYNCED,
                        http_attempts=attempts,
                        response_code=200,
                        destination_id=record.get("id"),
                        created=bool(record.get("created")),
                    )
                )
            else:
                results.append(
                    RowResult(
                        **b,
                        status=FAILED,
                        http_attempts=attempts,
                        response_code=200,
                        error=_record_error(record),
                        destination_id=row.destination_id,
                    )
                )
    return PushOutcome(tuple(results), stats=_stats(client))


def _stats(client: SalesforceClient) -> dict[str, Any]:
    usage = client.api_usage()
    return {**client.counter.stats(), **({"api_usage": usage} if usage else {})}
