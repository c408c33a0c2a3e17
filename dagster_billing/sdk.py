"""A small client for the ingestion API: record events, it batches, retries and flushes on exit.

    from dagster_billing.sdk import BillingClient

    with BillingClient("http://127.0.0.1:8000", api_key=os.environ["BILLING_API_KEY"]) as client:
        client.record("api.requests", "acct_meridian", 1)
        client.record("tokens.generated", "acct_meridian", 1500, properties={"model": "gpt-4o"})

Every event gets a uniqueId when it is recorded (unless given), so a retried batch is free: the
server answers the events it already has as duplicates. The ids it makes are UUIDv7s, which
start with the time: the API's claim table stores ids in order, and takes time-ordered ones
about 25 times cheaper than random ones (decision 118; docs/ingestion.md). Batches are retried
with exponential backoff and jitter on connection errors, 429 and 5xx; other answers are final.
Items the server rejects (bad timestamp, unknown meter, ...) are kept in `client.rejected` with
their reason. An event that cannot be written as JSON at all (properties nested too deep, a
value JSON has no form for) raises ValueError from `record`, so it never takes a batch of good
events down with it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import orjson
import tenacity

log = logging.getLogger("dagster_billing.sdk")

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def new_unique_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: 48 bits of Unix time in milliseconds, the version,
    74 random bits and the variant. Ids made later sort after earlier ones (to the millisecond),
    so the server's claim table appends them instead of writing each on a page of its own as it
    does random (uuid4) ids (decision 118). Python's uuid module has uuid7 from 3.14 on."""
    random = int.from_bytes(os.urandom(10))
    value = (
        (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80
        | 0x7 << 76
        | (random >> 62 & 0xFFF) << 64
        | 0b10 << 62
        | random & (1 << 62) - 1
    )
    return uuid.UUID(int=value).hex


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SendError(Exception):
    """A batch the server refused as a whole (401, 400, 413, ...), or that retries could not send."""


@dataclass(frozen=True)
class Rejected:
    event: dict
    reason: str
    message: str


@dataclass
class Stats:
    sent_batches: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0


def _value(value: Decimal | int | str | float) -> str | int:
    if isinstance(value, bool):
        raise TypeError("value must be a number, not a bool")
    if isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        # The shortest text that reads back as this float (0.1 stays "0.1"), without exponent.
        return format(Decimal(repr(value)), "f")
    raise TypeError(f"value must be a Decimal, int, str or float, not {type(value).__name__}")


def _timestamp(ts: datetime | str | None) -> str:
    if ts is None:
        ts = datetime.now(UTC)
    if isinstance(ts, str):
        return ts
    if ts.tzinfo is None:
        raise ValueError("ts must be timezone-aware (e.g. datetime.now(UTC))")
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class BillingClient:
    base_url: str
    api_key: str
    batch_size: int = 500
    flush_interval: float = 1.0
    max_attempts: int = 8
    max_backoff: float = 10.0
    timeout: float = 10.0
    max_buffered: int = 100_000
    transport: httpx.BaseTransport | None = None
    stats: Stats = field(default_factory=Stats, init=False)
    rejected: list[Rejected] = field(default_factory=list, init=False)
    failed: list[dict] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
            },
            timeout=self.timeout,
            transport=self.transport,
        )
        self._cond = threading.Condition()
        self._buffer: list[dict] = []
        self._unanswered = 0
        self._flush_requested = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="billing-sdk", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- public ------------------------------------------------------------------------------

    def record(
        self,
        meter: str,
        account: str,
        value: Decimal | int | str | float,
        *,
        ts: datetime | str | None = None,
        unique_id: str | None = None,
        properties: dict | None = None,
    ) -> str:
        """Queue one event; returns its uniqueId. Blocks while max_buffered events wait."""
        event = {
            "uniqueId": unique_id or new_unique_id(),
            "account": account,
            "meter": meter,
            "value": _value(value),
            "ts": _timestamp(ts),
        }
        if properties:
            event["properties"] = properties
        try:
            orjson.dumps(event)
        except TypeError as error:
            raise ValueError(f"the event cannot be sent as JSON: {error}") from None
        with self._cond:
            if self._closed:
                raise RuntimeError("client is closed")
            while len(self._buffer) >= self.max_buffered:
                self._cond.wait()
            self._buffer.append(event)
            self._unanswered += 1
            if len(self._buffer) >= self.batch_size:
                self._cond.notify_all()
        return event["uniqueId"]

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything recorded so far; True once the server answered every event."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._unanswered:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._flush_requested = False
        return True

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush, stop the sender, close the connection pool (also runs at interpreter exit)."""
        with self._cond:
            if self._closed:
                return
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._http.close()
        atexit.unregister(self.close)

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sender thread -----------------------------------------------------------------------

    def _next_batch(self) -> list[dict] | None:
        with self._cond:
            waited_since = time.monotonic()
            while True:
                if self._buffer and (
                    len(self._buffer) >= self.batch_size
                    or self._flush_requested
                    or self._closed
                    or time.monotonic() - waited_since >= self.flush_interval
                ):
                    batch = self._buffer[: self.batch_size]
                    del self._buffer[: self.batch_size]
                    self._cond.notify_all()
                    return batch
                if self._closed:
                    return None
                if not self._buffer:
                    waited_since = time.monotonic()
                self._cond.wait(self.flush_interval)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._send(batch)
            except Exception as error:
                log.error("dropping a batch of %d events after retries: %s", len(batch), error)
                self.failed.extend(batch)
                self.stats.failed += len(batch)
            finally:
                with self._cond:
                    self._unanswered -= len(batch)
                    self._cond.notify_all()

    def _send(self, batch: list[dict]) -> None:
        body = orjson.dumps({"measurements": batch})

        def wait(retry_state: tenacity.RetryCallState) -> float:
            backoff = tenacity.wait_exponential_jitter(initial=0.2, max=self.max_backoff)
            seconds = backoff(retry_state)
            error = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(error, _Retryable) and error.retry_after is not None:
                seconds = max(seconds, min(error.retry_after, self.max_backoff))
            return seconds

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            log.warning("retrying a batch: %s", retry_state.outcome.exception())

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        answer = retrying(self._post, body)
        self.stats.sent_batches += 1
        self.stats.accepted += answer["accepted"]
        self.stats.duplicate += answer["duplicate"]
        self.stats.rejected += answer["rejected"]
        for error in answer.get("errors", []):
            self.rejected.append(Rejected(batch[error["index"]], error["reason"], error["message"]))

    def _post(self, body: bytes) -> dict:
        try:
            response = self._http.post("/v1/measurements", content=body)
        except httpx.TransportError as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from error
        if response.status_code in (202, 422):
            answer = response.json()
            if "accepted" in answer:
                return answer
        if response.status_code in RETRYABLE_STATUS:
            retry_after = response.headers.get("retry-after")
            raise _Retryable(
                f"HTTP {response.status_code}",
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        raise SendError(f"HTTP {response.status_code}: {response.text[:500]}")
