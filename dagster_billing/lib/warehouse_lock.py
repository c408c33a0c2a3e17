"""Waiting for the DuckDB warehouse when another process holds its lock.

DuckDB lets one process write a file, or several processes read it, never both. The pipeline's
own writers are serialized by the `duckdb` pool; what remains is a process outside Dagster: a
notebook or `duckdb` shell left open on warehouse.duckdb, `billing watch` next to the daemon.
Analysts have the published snapshots for that (dagster_billing.analytics), so a lock on the
live warehouse is expected to be short: wait for it with backoff, say what holds it, and fail
with that message only after BILLING_WAREHOUSE_LOCK_TIMEOUT seconds (default 300).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import tenacity

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
_LOCK_MESSAGES = ("Could not set lock on file", "Conflicting lock is held")


class WarehouseLocked(RuntimeError):
    """Another process held the warehouse's lock for longer than the lock timeout."""


def is_lock_conflict(error: BaseException | str) -> bool:
    """Whether a DuckDB error (or a dbt error text that quotes one) is a file lock conflict."""
    if isinstance(error, WarehouseLocked):
        return False  # already waited for
    text = error if isinstance(error, str) else str(error)
    return any(message in text for message in _LOCK_MESSAGES)


def lock_timeout_seconds() -> float:
    value = os.environ.get("BILLING_WAREHOUSE_LOCK_TIMEOUT")
    return float(value) if value else DEFAULT_LOCK_TIMEOUT_SECONDS


def locked_message(path: Path, error: BaseException | str) -> str:
    holder = re.search(r"Conflicting lock is held in .*? \(PID \d+\)", str(error))
    detail = holder.group(0) if holder else (str(error).strip().splitlines() or ["locked"])[0]
    return (
        f"the warehouse {path} is locked by another process ({detail}). A reader left open on "
        "the live warehouse blocks the pipeline: analysts query the published snapshot instead "
        "(`billing analytics path`, docs/analytics.md)"
    )


def retry_while_locked(
    action: Callable[[], T],
    path: Path,
    *,
    logger: logging.Logger | None = None,
    retry_on: Callable[[BaseException], bool] = is_lock_conflict,
) -> T:
    """`action()`, retried with jittered exponential backoff (0.5 s up to 10 s) while it fails
    on a lock conflict, for at most lock_timeout_seconds(); then WarehouseLocked."""
    log = logger or logging.getLogger(__name__)
    timeout = lock_timeout_seconds()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            f"{locked_message(path, error or '')}; retrying in "
            f"{state.next_action.sleep if state.next_action else 0:.1f} s "
            f"(waited {state.seconds_since_start:.0f} s of at most {timeout:.0f} s)"
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retry_on),
        wait=tenacity.wait_exponential_jitter(initial=0.5, max=10),
        stop=tenacity.stop_after_delay(timeout),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(action)
    except Exception as error:
        if retry_on(error):
            raise WarehouseLocked(
                f"gave up after {timeout:.0f} s: {locked_message(path, error)}"
            ) from error
        raise
