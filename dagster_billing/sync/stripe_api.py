"""Stripe: customers, invoices and invoice items through stripe-python's StripeClient, never
double-posted.

Contract (docs.stripe.com):
- Create `POST /v1/customers`, `POST /v1/invoices` (a draft: customer, currency,
  collection_method send_invoice, due_date, number, pending_invoice_items_behavior exclude,
  auto_advance off), `POST /v1/invoiceitems` (amount: integer in the currency's minor unit,
  currency, customer, invoice, description, period, metadata); update `POST /v1/{resource}/{id}`,
  where an invoice takes neither customer, currency nor pending_invoice_items_behavior and an
  invoice item neither customer, currency nor invoice (stripe-python's generated
  InvoiceCreateParams / InvoiceModifyParams and InvoiceItemCreateParams /
  InvoiceItemModifyParams, "File generated from our OpenAPI spec").
- Finalize `POST /v1/invoices/{id}/finalize` (auto_advance off): draft to open, once
  payments/stripe_invoice_status finds the draft's amount and line count equal to our invoice's
  (decision 69).
- Idempotency: Stripe saves the status and body of the first request with an `Idempotency-Key`
  once the endpoint starts executing and replays it for retries with the same key; the same key
  with different parameters is an idempotency_error; keys may be pruned after 24 hours
  ("Idempotent requests", https://docs.stripe.com/api/idempotent_requests,
  https://docs.stripe.com/idempotency).
- Retries: on connection errors, 429, 5xx, honouring `Stripe-Should-Retry` when present
  ("Advanced error handling", https://docs.stripe.com/error-low-level). stripe-python does not
  retry a bare 429 and mints a random key per call, so its own retries are off
  (max_network_retries=0) and every request carries a key derived from our ids and the payload
  hash: a Dagster retry or a re-run sends the same key.

Stripe has no upsert by external id. The ledger remembers each Stripe id; a row without one is
created, a row with one is updated. A create whose outcome is unknown (timeout, 5xx) is pinned:
the next run repeats exactly that request with its key (Stripe replays the stored result, so the
object exists once) before anything else happens to the row.
"""

from __future__ import annotations

from typing import Any

import requests
import stripe

from dagster_billing.sync.push import (
    FAILED,
    SYNCED,
    FatalSyncError,
    MissingReference,
    PendingRow,
    PushOutcome,
    RowResult,
    SyncPlan,
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

RESOURCES = ("customers", "invoices", "invoice_items")


class StripeAuthError(FatalSyncError):
    pass


def idempotency_key(
    sync_object: str, external_id: str, operation: str, payload_hash: str, version: int
) -> str:
    """Deterministic: the same row, payload and operation always get the same key. `version`
    (how many times the row was synced before) keeps an update that returns to an earlier
    payload from replaying that earlier update's stored response."""
    return f"billing-{sync_object}-{external_id}-{operation}-v{version}-{payload_hash}"[:255]


class StripeApi:
    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://api.stripe.com",
        timeout_seconds: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.retry = retry
        self.counter = RequestCounter()
        self.api_base = api_base
        self.session = requests.Session()
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout_seconds, session=self.session),
        )

    def _service(self, resource: str) -> Any:
        if resource not in RESOURCES:
            raise ValueError(f"unsupported Stripe resource {resource!r}")
        return getattr(self.client.v1, resource)

    @staticmethod
    def _classified(call: Any) -> Any:
        try:
            return call()
        except stripe.AuthenticationError as error:
            raise StripeAuthError(
                f"Stripe rejected the API key (STRIPE_API_KEY): {error.user_message}"
            ) from error
        except stripe.APIConnectionError as error:
            raise TransientError(
                f"connection error: {error.user_message}", in_doubt=True
            ) from error
        except stripe.StripeError as error:
            status = error.http_status
            should_retry = (error.headers or {}).get("stripe-should-retry")
            message = f"HTTP {status} {error.code or type(error).__name__}: {error.user_message}"
            retryable = should_retry == "true" or (
                should_retry != "false" and (status == 429 or (status or 0) >= 500)
            )
            if retryable:
                raise TransientError(
                    message,
                    status=status,
                    in_doubt=(status or 0) >= 500,
                    retry_after=retry_after_seconds((error.headers or {}).get("retry-after")),
                ) from error
            raise PermanentError(message, status=status) from error

    def check_credentials(self) -> None:
        call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._classified(
                lambda: self.client.v1.customers.list(params={"limit": 1})
            ),
        )

    def create(self, resource: str, params: dict[str, Any], key: str) -> tuple[dict, int]:
        service = self._service(resource)
        attempted = call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._classified(
                lambda: service.create(params=params, options={"idempotency_key": key})
            ),
        )
        return attempted.value, attempted.attempts

    def update(
        self, resource: str, object_id: str, params: dict[str, Any], key: str
    ) -> tuple[dict, int]:
        service = self._service(resource)
        attempted = call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._classified(
                lambda: service.update(object_id, params=params, options={"idempotency_key": key})
            ),
        )
        return attempted.value, attempted.attempts

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any]:
        service = self._service(resource)
        return call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._classified(lambda: service.retrieve(object_id)),
        ).value.to_dict()

    def finalize_invoice(self, invoice_id: str, key: str) -> dict[str, Any]:
        """Draft -> open (POST /v1/invoices/{id}/finalize), with auto_advance off: we collect by
        sending the invoice, Stripe does not chase it."""
        return call_with_retries(
            self.retry,
            counter=self.counter,
            call=lambda: self._classified(
                lambda: self.client.v1.invoices.finalize_invoice(
                    invoice_id, params={"auto_advance": False}, options={"idempotency_key": key}
                )
            ),
        ).value.to_dict()

    def list_all(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        """Every object, a page (100) at a time. Each page is one request through the retry
        policy, so a 5xx or timeout on page 7 retries page 7 (stripe-python's
        `auto_paging_iter` would raise it unclassified)."""
        service = self._service(resource)
        objects: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page_params = {"limit": 100, **params, **({"starting_after": after} if after else {})}
            page = call_with_retries(
                self.retry,
                counter=self.counter,
                call=lambda page_params=page_params: self._classified(
                    lambda: service.list(params=page_params)
                ),
            ).value
            objects += [obj.to_dict() for obj in page.data]
            if not page.has_more or not page.data:
                return objects
            after = page.data[-1].id

    def close(self) -> None:
        self.session.close()


def push(plan: SyncPlan, api: StripeApi) -> PushOutcome:
    """Create or update each pending row, one request each (Stripe has no batch writes)."""
    try:
        api.check_credentials()
    except RetriesExhausted as error:
        raise FatalSyncError(f"Stripe is not reachable at {api.api_base}: {error}") from error
    results: list[RowResult] = []
    for index, row in enumerate(plan.pending):
        try:
            results.extend(_push_row(plan, api, row))
        except StripeAuthError as error:
            results += [
                not_attempted(r, "not attempted: run stopped") for r in plan.pending[index:]
            ]
            return PushOutcome(tuple(results), fatal_error=str(error), stats=api.counter.stats())
    return PushOutcome(tuple(results), stats=api.counter.stats())


def _params(plan: SyncPlan, payload: str) -> dict[str, Any]:
    return resolve_references(
        parse_payload(payload),
        plan.sync_object.references,
        plan.reference_ids,
        lambda _value, stripe_id: stripe_id,
    )


def _push_row(plan: SyncPlan, api: StripeApi, row: PendingRow) -> list[RowResult]:
    """One or two results: a pinned create is repeated first, then the current payload applied."""
    sync_object = plan.sync_object
    resource = sync_object.option("resource")
    results: list[RowResult] = []
    destination_id = row.destination_id
    version = row.synced_versions

    def result(
        operation: str, payload: str, payload_hash: str, key: str | None, **fields: Any
    ) -> RowResult:
        return RowResult(
            external_id=row.external_id,
            payload_hash=payload_hash,
            payload=payload,
            operation=operation,
            attempt=row.attempt,
            idempotency_key=key,
            **fields,
        )

    def attempt(operation: str, payload: str, payload_hash: str, key: str) -> str | None:
        """Send one request; append its result; the Stripe id on success."""
        try:
            params = _params(plan, payload)
            if operation == "create":
                obj, attempts = api.create(resource, params, key)
            else:
                for field_name in sync_object.option("immutable_on_update") or ():
                    params.pop(field_name, None)
                obj, attempts = api.update(resource, destination_id, params, key)
        except MissingReference as error:
            results.append(
                result(operation, payload, payload_hash, None, status=FAILED, error=str(error))
            )
            return None
        except PermanentError as error:
            results.append(
                result(
                    operation,
                    payload,
                    payload_hash,
                    key,
                    status=FAILED,
                    http_attempts=error.attempts,
                    response_code=error.status,
                    error=str(error),
                    destination_id=destination_id,
                )
            )
            return None
        except RetriesExhausted as error:
            results.append(
                result(
                    operation,
                    payload,
                    payload_hash,
                    key,
                    status=FAILED,
                    http_attempts=error.attempts,
                    response_code=error.last.status,
                    error=str(error),
                    in_doubt=error.last.in_doubt,
                    destination_id=destination_id,
                )
            )
            return None
        results.append(
            result(
                operation,
                payload,
                payload_hash,
                key,
                status=SYNCED,
                http_attempts=attempts,
                response_code=200,
                destination_id=obj["id"],
                created=operation == "create",
            )
        )
        return obj["id"]

    pinned = row.pinned_create
    if destination_id is None and pinned is not None:
        destination_id = attempt(
            "create", pinned.payload, pinned.payload_hash, pinned.idempotency_key
        )
        if destination_id is None:
            return results
        version += 1
        if pinned.payload_hash == row.payload_hash:
            return results
    if destination_id is None:
        key = idempotency_key(
            sync_object.object, row.external_id, "create", row.payload_hash, version
        )
        attempt("create", row.payload, row.payload_hash, key)
    else:
        key = idempotency_key(
            sync_object.object, row.external_id, "update", row.payload_hash, version
        )
        attempt("update", row.payload, row.payload_hash, key)
    return results
