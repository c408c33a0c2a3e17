"""What a push run works on and what it reports, the same for every destination.

A run loads a SyncPlan (rows whose payload hash differs from the last synced one, plus what the
ledger knows about them), a destination pushes it and returns one RowResult per row, and the
results are appended to the ledger. Payloads travel as the exact text the dbt model produced;
they are parsed only to resolve references, with decimals kept as Decimal and re-encoded
without ever becoming floats.
"""

from __future__ import annotations

import copy
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
class ExpectedDocument:
    """What the warehouse says a booked document is (a final invoice in billing.fct_invoices, a
    credit note in billing.fct_credit_notes), for reconciliation."""

    document_id: str
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
    expected_documents: tuple[ExpectedDocument, ...] = ()
    # Every row of the model, (external id, payload), for reconcile: fields.
    expected_records: tuple[tuple[str, str], ...] = ()
    # Immutable rows already synced whose payload has changed since: not sent, reported.
    frozen_changed: tuple[str, ...] = ()


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

    A reference is a field name or a dotted path where `name[]` walks a list
    (`apply.items[].doc`: every applied document of a NetSuite customer payment).
    `replace(field_value, destination_id)` builds the new value; the current value is read with
    `our_id(field_value)` conventions of the destination (a string, or {"externalId": ...})."""
    resolved = copy.deepcopy(payload)
    for path, target_object in references.items():
        for container, key in _reference_slots(resolved, path):
            value = container[key]
            if value is None:
                continue
            our_id = value.get("externalId") if isinstance(value, dict) else value
            destination_id = reference_ids.get(target_object, {}).get(our_id)
            if destination_id is None:
                raise MissingReference(
                    f"{path} refers to {target_object} {our_id!r}, which is not synced yet"
                )
            container[key] = replace(value, destination_id)
    return resolved


def _reference_slots(node: Any, path: str) -> list[tuple[Any, Any]]:
    """(container, key) of every value at a reference path, absent fields skipped."""
    head, _, rest = path.partition(".")
    name = head.removesuffix("[]")
    if not isinstance(node, dict) or node.get(name) is None:
        return []
    if head.endswith("[]"):
        children = node[name] if isinstance(node[name], list) else []
        if not rest:
            return [(children, index) for index in range(len(children))]
        return [slot for child in children for slot in _reference_slots(child, rest)]
    if not rest:
        return [(node, name)]
    return _reference_slots(node[name], rest)


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
