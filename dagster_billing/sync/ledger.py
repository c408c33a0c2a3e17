"""The sync ledger: one row per push attempt of one record, appended, never updated.

`sync.ledger` answers "what did we send to whom, when, and what came back": destination, object,
external id, payload hash (and the payload itself), operation, status, destination id, HTTP
response code, error, attempt (how many runs tried this payload version), HTTP tries within the
run, idempotency key, whether the outcome is in doubt, and the time. `sync.ledger_current` shows
the latest row per record.

A row is sent when the model's payload hash differs from the hash of the latest *synced* ledger
row for it: new rows, changed rows and rows whose last attempt failed. Rows of an immutable object
(meta.sync.immutable: final invoices, credit notes) are sent until they sync once, then never
again; a later change of their payload is listed in the plan (`frozen_changed`), not sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from dagster_billing.sync.push import (
    SYNCED,
    ExpectedDocument,
    PendingRow,
    PinnedCreate,
    RowResult,
    SyncPlan,
)
from dagster_billing.sync.spec import SyncObject

LEDGER = "sync.ledger"

_DDL = """
create schema if not exists sync;
create sequence if not exists sync.ledger_seq;
create table if not exists sync.ledger (
    ledger_seq bigint not null default nextval('sync.ledger_seq'),
    run_id varchar not null,
    destination varchar not null,
    object varchar not null,
    external_id varchar not null,
    payload_hash varchar not null,
    operation varchar not null,
    status varchar not null,
    attempt integer not null,
    http_attempts integer not null,
    destination_id varchar,
    response_code integer,
    error varchar,
    in_doubt boolean not null,
    idempotency_key varchar,
    payload varchar not null,
    recorded_at timestamp not null
);
create or replace view sync.ledger_current as
select * from sync.ledger
qualify row_number() over (
    partition by destination, object, external_id order by ledger_seq desc
) = 1;
"""


class SyncModelMissing(RuntimeError):
    """The sync model's table, or a mart its reconciliation reads, is not in the warehouse (or
    lacks a column it reads: built by an earlier version): run the pipeline (dbt) first."""


@dataclass
class _RowHistory:
    last_synced_hash: str | None = None
    destination_id: str | None = None
    synced_versions: int = 0
    attempts_by_hash: dict[str, int] = field(default_factory=dict)
    pinned_create: PinnedCreate | None = None


def ensure_ledger(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(_DDL)


def _table_exists(connection: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".", 1)
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def _histories(
    connection: duckdb.DuckDBPyConnection, destination: str, obj: str
) -> dict[str, _RowHistory]:
    histories: dict[str, _RowHistory] = {}
    if not _table_exists(connection, LEDGER):
        return histories
    rows = connection.execute(
        f"""
        select external_id, payload_hash, operation, status, in_doubt, destination_id,
               idempotency_key, payload
        from {LEDGER}
        where destination = ? and object = ?
        order by ledger_seq
        """,
        [destination, obj],
    ).fetchall()
    for external_id, payload_hash, operation, status, in_doubt, dest_id, key, payload in rows:
        history = histories.setdefault(external_id, _RowHistory())
        history.attempts_by_hash[payload_hash] = history.attempts_by_hash.get(payload_hash, 0) + 1
        if status == SYNCED:
            history.last_synced_hash = payload_hash
            history.synced_versions += 1
            history.destination_id = dest_id or history.destination_id
            history.pinned_create = None
        elif operation == "create":
            history.pinned_create = (
                PinnedCreate(key, payload, payload_hash) if in_doubt and key else None
            )
    return histories


def destination_ids(connection: duckdb.DuckDBPyConnection, destination: str, obj: str) -> dict:
    """Our id -> destination id, for records of `obj` that have been synced."""
    return {
        external_id: history.destination_id
        for external_id, history in _histories(connection, destination, obj).items()
        if history.destination_id
    }


def load_plan(
    connection: duckdb.DuckDBPyConnection, sync_object: SyncObject, *, resend_all: bool = False
) -> SyncPlan:
    """The rows of the sync model that need sending, with what the ledger knows about them.
    `resend_all` sends unchanged rows too (after a destination was restored or cleaned up)."""
    if not _table_exists(connection, sync_object.table):
        raise SyncModelMissing(
            f"{sync_object.table} does not exist: build the dbt models (billing_pipeline) first"
        )
    model_rows = connection.execute(
        f"select external_id, payload, payload_hash from {sync_object.table} order by external_id"
    ).fetchall()
    histories = _histories(connection, sync_object.destination, sync_object.object)
    immutable = bool(sync_object.option("immutable"))
    pending = []
    frozen_changed = []
    for external_id, payload, payload_hash in model_rows:
        history = histories.get(external_id, _RowHistory())
        if not resend_all:
            if history.last_synced_hash == payload_hash:
                continue
            if immutable and history.last_synced_hash is not None:
                frozen_changed.append(external_id)
                continue
        pending.append(
            PendingRow(
                external_id=external_id,
                payload=payload,
                payload_hash=payload_hash,
                attempt=history.attempts_by_hash.get(payload_hash, 0) + 1,
                destination_id=history.destination_id,
                synced_versions=history.synced_versions,
                pinned_create=history.pinned_create,
            )
        )
    references = {
        target: destination_ids(connection, sync_object.destination, target)
        for target in sorted(set(sync_object.references.values()))
    }
    reconciles_documents = sync_object.reconcile not in (None, "fields")
    expected = (
        fetch_expected_documents(connection, sync_object.reconcile) if reconciles_documents else ()
    )
    return SyncPlan(
        sync_object=sync_object,
        model_rows=len(model_rows),
        pending=tuple(pending),
        reference_ids=references,
        expected_documents=expected,
        expected_records=(
            tuple((external_id, payload) for external_id, payload, _hash in model_rows)
            if sync_object.reconcile == "fields"
            else ()
        ),
        frozen_changed=tuple(frozen_changed),
    )


# What a destination must hold, per meta.sync.reconcile: booked documents only (drafts are not sent).
_EXPECTED_DOCUMENTS = {
    "invoices": """
        select invoice_id, currency, line_count, total, total_minor
        from billing.fct_invoices
        where status = 'final'
        order by invoice_id
    """,
    "credit_notes": """
        select credit_note_id, currency, line_count, total, total_minor
        from billing.fct_credit_notes
        order by credit_note_id
    """,
    # A paid invoice's payment (what Stripe collected), applied to the invoice (one line) when
    # the invoice still owed something after credit notes: as sync_netsuite__customer_payments
    # sends it, but read from the invoices' payment status.
    "payments": """
        select 'pay-' || invoice_id, currency, 1, amount_paid, amount_paid_minor
        from billing.fct_invoice_payments
        where payment_status = 'paid' and amount_paid > 0 and amount_due - credited > 0
        order by invoice_id
    """,
}


def fetch_expected_documents(
    connection: duckdb.DuckDBPyConnection, kind: str
) -> tuple[ExpectedDocument, ...]:
    try:
        rows = connection.execute(_EXPECTED_DOCUMENTS[kind]).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException) as error:
        raise SyncModelMissing(
            f"the documents to reconcile {kind} against cannot be read "
            f"({str(error).splitlines()[0]}): build the dbt "
            "models (billing_pipeline) first; a warehouse built by an earlier version lacks them"
        ) from error
    return tuple(ExpectedDocument(*row) for row in rows)


def record_results(
    connection: duckdb.DuckDBPyConnection,
    run_id: str,
    sync_object: SyncObject,
    results: Iterable[RowResult],
    *,
    recorded_at: datetime | None = None,
) -> int:
    """Append one ledger row per result, in one transaction."""
    ensure_ledger(connection)
    when = (recorded_at or datetime.now(UTC)).replace(tzinfo=None)
    rows = [
        (
            run_id,
            sync_object.destination,
            sync_object.object,
            result.external_id,
            result.payload_hash,
            result.operation,
            result.status,
            result.attempt,
            result.http_attempts,
            result.destination_id,
            result.response_code,
            result.error,
            result.in_doubt,
            result.idempotency_key,
            result.payload,
            when,
        )
        for result in results
    ]
    if not rows:
        return 0
    connection.execute("begin transaction")
    try:
        connection.executemany(
            f"""
            insert into {LEDGER} (
                run_id, destination, object, external_id, payload_hash, operation, status,
                attempt, http_attempts, destination_id, response_code, error, in_doubt,
                idempotency_key, payload, recorded_at
            ) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            rows,
        )
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise
    return len(rows)
