"""What a push run works on and what it reports, the same for every destination.

A run loads a SyncPlan (rows whose payload hash differs from the last synced one, plus what the
ledger knows about them), a destination pushes it and returns one RowResult per row, and the
results are appended to the ledger. Payloads travel as the exact text the dbt model produced;
they are parsed only to resolve references, with decimals kept as Decimal and re-encoded
without ever becoming floats.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dagster_billing.sync.spec import SyncObject

SYNCED = "synced"
FAILED = "failed"


@dataclass(frozen=True)
class PinnedCreate:
    """A create whose outcome is unknown (timeout or 5xx after retries). Until it is resolved the
    same request, same idempotency key, is the only create allowed for the row."""

    idempotency_key: str
    payload: str
    payload_hash: str


@dataclass(frozen=True)
class PendingRow:
    external_id: str
    payload: str
    payload_hash: str
    attempt: int
    destination_id: str | None = None
    synced_versions: int = 0
    pinned_create: PinnedCreate | None = None


@dataclass(frozen=True)
class ExpectedInvoice:
    """What billing.fct_invoices says an invoice is, for reconciliation."""

    invoice_id: str
    currency: str
    line_count: int
    total: Decimal
    total_minor: int


@dataclass(frozen=True)
class SyncPlan:
    sync_object: SyncObject
    model_rows: int
    pending: tuple[PendingRow, ...]
    reference_ids: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    expected_invoices: tuple[ExpectedInvoice, ...] = ()


@dataclass(frozen=True)
class RowResult:
    external_id: str
    payload_hash: str
    payload: str
    operation: str
    status: str
    attempt: int
    http_attempts: int = 0
    destination_id: str | None = None
    response_code: int | None = None
    error: str | None = None
    in_doubt: bool = False
    idempotency_key: str | None = None
    created: bool = False


@dataclass(frozen=True)
class PushOutcome:
    """Per-row results, plus the error that stopped the run early (rows after it not attempted)."""

    results: tuple[RowResult, ...]
    fatal_error: str | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        statuses = Counter(result.status for result in self.results)
        return {
            "sent": sum(1 for r in self.results if r.http_attempts > 0),
            "synced": statuses.get(SYNCED, 0),
            "failed": statuses.get(FAILED, 0),
            "created": sum(1 for r in self.results if r.status == SYNCED and r.created),
            "updated": sum(1 for r in self.results if r.status == SYNCED and not r.created),
            "in_doubt": sum(1 for r in self.results if r.in_doubt),
        }


class FatalSyncError(Exception):
    """Stops a push: credentials rejected, destination misconfigured. Nothing more is sent."""


class MissingReference(Exception):
    """A payload names a record of another object that has not reached the destination yet."""


def parse_payload(payload: str) -> dict[str, Any]:
    return json.loads(payload, parse_float=Decimal)


def dump_payload(value: Any) -> str:
    """Compact JSON; refuses anything that is not a JSON-native value (no Decimal, no float)."""

    def refuse(obj: Any) -> Any:
        raise TypeError(f"payload value {obj!r} ({type(obj).__name__}) is not JSON-native")

    def check(obj: Any) -> None:
        if isinstance(obj, float):
            raise TypeError(f"payload value {obj!r} is a float; money must be text or minor units")
        if isinstance(obj, dict):
            for item in obj.values():
                check(item)
        elif isinstance(obj, list):
            for item in obj:
                check(item)

    check(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=refuse)


def resolve_references(
    payload: dict[str, Any],
    references: Mapping[str, str],
    reference_ids: Mapping[str, Mapping[str, str]],
    replace: Any,
) -> dict[str, Any]:
    """Replace our ids in the reference fields of a payload with destination ids.

    `replace(field_value, destination_id)` builds the new value; the current value is read with
    `our_id(field_value)` conventions of the destination (a string, or {"externalId": ...})."""
    resolved = dict(payload)
    for field_name, target_object in references.items():
        if field_name not in resolved or resolved[field_name] is None:
            continue
        value = resolved[field_name]
        our_id = value.get("externalId") if isinstance(value, dict) else value
        destination_id = reference_ids.get(target_object, {}).get(our_id)
        if destination_id is None:
            raise MissingReference(
                f"{field_name} refers to {target_object} {our_id!r}, which is not synced yet"
            )
        resolved[field_name] = replace(value, destination_id)
    return resolved


def not_attempted(row: PendingRow, reason: str, operation: str = "upsert") -> RowResult:
    return RowResult(
        external_id=row.external_id,
        payload_hash=row.payload_hash,
        payload=row.payload,
        operation=operation,
        status=FAILED,
        attempt=row.attempt,
        error=reason,
        destination_id=row.destination_id,
    )
