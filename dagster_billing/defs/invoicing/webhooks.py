"""Outbound webhooks: invoice.finalized, invoice.draft_updated, invoice.overdue (dunning) and
usage.threshold_crossed, from the outbox billing.fct_webhook_events to one configured URL. Each request is signed (HMAC-SHA256
over timestamp and body, see lib/webhooks.py), carries its event id for the receiver's
deduplication, and is retried with exponential backoff on connection errors, 429 and 5xx. Events
delivered are recorded in webhooks.deliveries and never sent again."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import httpx
from pydantic import Field
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from dagster_billing.defs import groups
from dagster_billing.defs.invoicing.queries import fetch_rows
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

EVENTS_KEY = dg.AssetKey(["billing", "fct_webhook_events"])
DELIVERIES_KEY = dg.AssetKey(["webhooks", "deliveries"])
EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "occurred_at",
    "account_id",
    "invoice_id",
    "invoice_number",
    "status",
    "period_start",
    "period_end",
    "currency",
    "total",
    "total_minor",
    "threshold_id",
    "meter_code",
    "limit_quantity",
    "usage_quantity",
    "due_on",
    "days_past_due",
    "amount_outstanding",
)
DDL = """
create schema if not exists webhooks;
create table if not exists webhooks.deliveries (
    event_id varchar primary key,
    event_type varchar not null,
    status varchar not null,
    attempts integer not null,
    status_code integer,
    last_error varchar,
    delivered_at timestamp,
    recorded_at timestamp not null
);
"""


class RetryableDelivery(Exception):
    """A delivery attempt worth repeating: connection error, 429 or 5xx."""


@dataclass(frozen=True)
class Delivery:
    event_id: str
    event_type: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None


def event_body(event: dict) -> bytes:
    """The JSON body of an event: id, type, created and the event's non-empty fields as data.
    Money and quantities are decimal strings; keys sorted, so the body is stable."""
    data = {
        name: _json_value(value)
        for name, value in event.items()
        if value is not None and name not in ("event_id", "event_type", "occurred_at")
    }
    payload = {
        "id": event["event_id"],
        "type": event["event_type"],
        "created": _json_value(event["occurred_at"]),
        "data": data,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _json_value(value):
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


class WebhookEndpoint(dg.ConfigurableResource):
    """Where webhooks go and the secret they are signed with (environment: BILLING_WEBHOOK_URL,
    BILLING_WEBHOOK_SECRET). A run that delivers webhooks fails at launch without them."""

    url: str = Field(description="The receiver's URL.")
    secret: str = Field(description="Shared HMAC-SHA256 signing secret.")
    timeout_seconds: float = 10.0
    max_attempts: int = Field(default=5, description="Attempts per event and run.")
    backoff_seconds: float = Field(default=1.0, description="First wait; doubles per attempt.")
    max_backoff_seconds: float = 30.0

    def deliver(self, event: dict, client: httpx.Client) -> Delivery:
        body = event_body(event)
        attempts = 0
        last: httpx.Response | None = None

        def attempt() -> httpx.Response:
            nonlocal attempts, last
            attempts += 1
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: event["event_id"],
                EVENT_TYPE_HEADER: event["event_type"],
                "Idempotency-Key": event["event_id"],
                SIGNATURE_HEADER: signature_header(self.secret, int(time.time()), body),
            }
            try:
                last = client.post(self.url, content=body, headers=headers)
            except httpx.TransportError as error:
                raise RetryableDelivery(f"{type(error).__name__}: {error}") from error
            if last.status_code == 429 or last.status_code >= 500:
                raise RetryableDelivery(f"HTTP {last.status_code}")
            return last

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            retry=retry_if_exception_type(RetryableDelivery),
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except RetryableDelivery as error:
            return Delivery(
                event["event_id"], event["event_type"], False, attempts, _code(last), str(error)
            )
        delivered = 200 <= response.status_code < 300
        return Delivery(
            event["event_id"],
            event["event_type"],
            delivered,
            attempts,
            response.status_code,
            None if delivered else f"HTTP {response.status_code}",
        )


def _code(response: httpx.Response | None) -> int | None:
    return response.status_code if response is not None else None


def pending_events(connection: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch_rows(
        connection,
        "billing.fct_webhook_events as events",
        EVENT_COLUMNS,
        "occurred_at, event_id",
        "not exists (select 1 from webhooks.deliveries as d "
        "where d.event_id = events.event_id and d.status = 'delivered')",
    )


def record_deliveries(connection: duckdb.DuckDBPyConnection, deliveries: list[Delivery]) -> None:
    if not deliveries:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    connection.executemany(
        "insert or replace into webhooks.deliveries values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                d.event_id,
                d.event_type,
                "delivered" if d.delivered else "failed",
                d.attempts,
                d.status_code,
                d.error,
                now if d.delivered else None,
                now,
            )
            for d in deliveries
        ],
    )


@dg.asset(
    key=DELIVERIES_KEY,
    deps=[EVENTS_KEY],
    group_name=groups.EXPORTS,
    kinds={"http", "duckdb"},
    pool=DUCKDB_POOL,
)
def webhook_deliveries(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse, webhooks: WebhookEndpoint
) -> dg.MaterializeResult:
    """Send every outbox event not delivered yet, in order; record the outcome per event. The
    warehouse is not held open while sending. Events that still fail are retried next run."""
    with warehouse.connect() as connection:
        connection.execute(DDL)
        events = pending_events(connection)
    with httpx.Client(timeout=webhooks.timeout_seconds) as client:
        deliveries = [webhooks.deliver(event, client) for event in events]
    with warehouse.connect() as connection:
        record_deliveries(connection, deliveries)
    failed = [d.event_id for d in deliveries if not d.delivered]
    metadata = {
        "pending": dg.MetadataValue.int(len(events)),
        "delivered": dg.MetadataValue.int(len(events) - len(failed)),
        "failed": dg.MetadataValue.json(failed[:50]),
    }
    if failed:
        raise dg.Failure(
            f"{len(failed)} webhooks not delivered (retried next run)", metadata=metadata
        )
    context.log.info(f"delivered {len(events)} webhooks")
    return dg.MaterializeResult(metadata=metadata)


@dg.definitions
def webhook_defs() -> dg.Definitions:
    """The delivery asset and its endpoint (a module with Definitions contributes only those)."""
    return dg.Definitions(
        assets=[webhook_deliveries],
        resources={
            "webhooks": WebhookEndpoint(
                url=dg.EnvVar("BILLING_WEBHOOK_URL"), secret=dg.EnvVar("BILLING_WEBHOOK_SECRET")
            )
        },
    )
