"""Retries with jittered exponential backoff (tenacity), honouring Retry-After when a server sends it.

Every client classifies its own errors into TransientError (retry: 429, 5xx, timeouts, connection
errors, NetSuite concurrency errors, Salesforce REQUEST_LIMIT_EXCEEDED) and everything else (no
retry). Retries re-send the same request: same URL, same body, same idempotency key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import tenacity

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying.

    in_doubt: the request may have been applied (timeout, 5xx) rather than refused before
    execution (429, concurrency limit). status: HTTP status, None when no response arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        in_doubt: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.in_doubt = in_doubt
        self.retry_after = retry_after


class PermanentError(Exception):
    """A definitive refusal (validation error, unknown reference): retrying the same request now
    won't help. The row is recorded as failed and sent again on the next run."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = 0


class RetriesExhausted(Exception):
    def __init__(self, last: TransientError, attempts: int) -> None:
        super().__init__(f"{last} (after {attempts} attempts)")
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Attempted(Generic[T]):
    value: T
    attempts: int


@dataclass
class RequestCounter:
    """Requests a client made (`calls`) and HTTP tries including retries (`attempts`); safe to
    count from several threads (NetSuite's reads run a few at a time)."""

    calls: int = 0
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, attempts: int) -> None:
        with self._lock:
            self.calls += 1
            self.attempts += attempts

    def stats(self) -> dict[str, int]:
        return {"http_requests": self.attempts, "retried_requests": self.attempts - self.calls}


def call_with_retries(
    policy: RetryPolicy, call: Callable[[], T], counter: RequestCounter | None = None
) -> Attempted[T]:
    """Run `call` until it returns or raises something other than TransientError, at most
    `policy.max_attempts` times. Raises RetriesExhausted with the last error and the count."""
    exponential = tenacity.wait_random_exponential(
        multiplier=policy.initial_backoff_seconds, max=policy.max_backoff_seconds
    )

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, policy.max_backoff_seconds)
        return exponential(state)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(TransientError),
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return call()

    try:
        value = retrying(counted)
    except TransientError as error:
        raise RetriesExhausted(error, attempts) from error
    except PermanentError as error:
        error.attempts = attempts
        raise
    finally:
        if counter is not None:
            counter.add(attempts)
    return Attempted(value, attempts)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (the delta-seconds form; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
