"""From request bodies to durable landing files.

Validation is the landing code's own: request items become the same raw rows as lines of a
landing file (`files.record_row`), checked by the same pandera schema
(`schemas.validated_rows`: the schema's checks in one polars pass, pandera itself for
the rows that fail them), so an item the API rejects would have been quarantined with the same
reason, and an item it accepts lands. On top, the API knows two things landing does not: the
meter catalogue (seeds) and which accounts the caller's tenant owns.

Each writer thread (BILLING_API_WRITER_THREADS per process, default 2) takes the requests queued
since its last pass as one group: one validation pass, one SQLite claim, one landing file, one
fsync. Under load groups grow, which amortizes the fixed costs per group; idle, a request is its
own group. Every request is answered only once its group's file and claim are durable.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl

from dagster_billing.api.settings import ApiSettings
from dagster_billing.api.state import BODY_HASH_BYTES, ApiState, Tenant
from dagster_billing.defs.ingest.files import (
    RAW_SCHEMA,
    FileProblem,
    check_not_foreign_text,
    csv_rows,
    decode_json,
    ndjson_rows,
    raw_frame,
    record_row,
    strip_bom,
)
from dagster_billing.defs.ingest.schemas import (
    FUTURE_TOLERANCE,
    validated_rows,
)
from dagster_billing.lib.fsync import fsync_path

# A written file is marked landed with the next group's claim, or after this long idle.
CONFIRM_AFTER_SECONDS = 0.05

# Raw row tuple positions (RAW_SCHEMA order).
LINE, UNIQUE_ID, ACCOUNT, METER, VALUE, TS, PROPERTIES = range(7)
assert list(RAW_SCHEMA)[:7] == [
    "source_line",
    "unique_id",
    "account_id",
    "meter_code",
    "value_text",
    "ts_text",
    "properties",
]

# Reasons the API adds to the landing reasons, and what every reason means for a client.
REASON_MESSAGES = {
    "malformed_json": "not a JSON object",
    "malformed_csv_row": "wrong number of CSV fields",
    "repeated_header": "a repeat of the CSV header row, not an event",
    "field_too_large": "a CSV field is larger than 131072 characters",
    "invalid_encoding": "not UTF-8 text",
    "invalid_properties": "properties must be a JSON object (nested at most a few hundred levels)",
    "missing_id": "uniqueId is required",
    "id_too_long": "uniqueId is too long (at most 255 characters including the '<tenant>:' prefix)",
    "missing_account": "account is required",
    "missing_meter": "meter is required",
    "missing_value": "value is required",
    "value_too_large": "value is too large (at most 28 digits before the decimal point)",
    "non_numeric_value": "value must be a decimal number (JSON number or numeric string)",
    "value_too_precise": "value has more than 10 decimal places",
    "negative_value": "value must be >= 0",
    "missing_timestamp": "ts is required",
    "bad_timestamp": "ts must be RFC 3339 with a UTC offset, e.g. 2026-01-05T12:34:56Z",
    "future_timestamp": "ts is more than 5 minutes in the future",
    "timestamp_before_floor": "ts is before the earliest event time accepted "
    "(BILLING_EVENT_TIME_FLOOR, default 2000-01-01T00:00:00Z)",
    "unknown_meter": "meter is not in the meter catalogue",
    "account_not_allowed": "this API key's tenant does not own the account",
    "conflict": "uniqueId was already accepted with a different body",
    "in_flight": "uniqueId is being written by another request; retry",
}


class BadRequest(Exception):
    """The body as a whole cannot be read (malformed JSON, wrong shape): 400."""


@dataclass(frozen=True)
class ItemError:
    index: int
    unique_id: str | None
    reason: str
    line: int | None = None

    def to_dict(self) -> dict:
        item = {
            "index": self.index,
            "uniqueId": self.unique_id,
            "reason": self.reason,
            "message": REASON_MESSAGES.get(self.reason, self.reason),
        }
        if self.line is not None:
            item["line"] = self.line
        return item


@dataclass
class IngestResult:
    accepted: int = 0
    duplicate: int = 0
    errors: list[ItemError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def to_dict(self, max_errors: int = 1000) -> dict:
        body = {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "errors": [error.to_dict() for error in self.errors[:max_errors]],
        }
        if self.rejected > max_errors:
            body["errors_truncated"] = True
        return body


@dataclass
class Items:
    """Raw rows of one request, with each row's client-side uniqueId and item index."""

    rows: list[tuple]
    client_ids: list[str | None]
    lines: list[int | None]


def _tenant_rows(tenant: Tenant, rows: list[tuple], with_lines: bool) -> Items:
    """Qualify ids with the tenant: idempotency is per tenant, and so is the warehouse's dedupe
    (it dedupes by uniqueId), because the landed id is `<tenant>:<uniqueId>`."""
    prefix = f"{tenant.tenant_id}:"
    client_ids = [row[UNIQUE_ID] for row in rows]
    qualified = [
        (row[LINE], prefix + unique_id, *row[UNIQUE_ID + 1 :])
        if unique_id is not None and unique_id.strip()
        else row
        for row, unique_id in zip(rows, client_ids, strict=True)
    ]
    lines = [row[LINE] for row in rows] if with_lines else [None] * len(rows)
    return Items(qualified, client_ids, lines)


def _readable(body: bytes) -> bytes:
    """The body without a UTF-8 byte order mark; 400 for UTF-16/32 text."""
    try:
        check_not_foreign_text(body)
    except FileProblem as problem:
        raise BadRequest(str(problem)) from None
    return strip_bom(body)


def items_from_json(tenant: Tenant, body: bytes, max_batch: int) -> Items:
    """One event object, a list of them, or {"measurements": [...]}."""
    try:
        decoded = decode_json(_readable(body))
    except Exception as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    if isinstance(decoded, dict) and "measurements" in decoded:
        records = decoded["measurements"]
        if not isinstance(records, list):
            raise BadRequest('"measurements" must be a list of events')
    elif isinstance(decoded, dict):
        records = [decoded]
    elif isinstance(decoded, list):
        records = decoded
    else:
        raise BadRequest('body must be an event, a list of events or {"measurements": [...]}')
    _check_count(len(records), max_batch)
    rows = [record_row(index + 1, record, "") for index, record in enumerate(records)]
    return _tenant_rows(tenant, rows, with_lines=False)


def items_from_ndjson(tenant: Tenant, body: bytes, max_batch: int) -> Items:
    rows = ndjson_rows(_readable(body))
    _check_count(len(rows), max_batch)
    return _tenant_rows(tenant, rows, with_lines=True)


def items_from_csv(tenant: Tenant, body: bytes, max_rows: int) -> Items:
    try:
        rows = csv_rows(_readable(body))
    except FileProblem as problem:
        raise BadRequest(f"the CSV cannot be read: {problem}") from None
    _check_count(len(rows), max_rows)
    return _tenant_rows(tenant, rows, with_lines=True)


class TooManyItems(Exception):
    pass


def _check_count(count: int, limit: int) -> None:
    if count == 0:
        raise BadRequest("no measurements in the body")
    if count > limit:
        raise TooManyItems(f"{count} measurements in one request; the limit is {limit}")


@dataclass
class _Submission:
    tenant: Tenant
    items: Items
    future: Future


class Busy(Exception):
    """The writer queue is full: 503 with Retry-After."""


_STOP = object()


class _Lane:
    """What one writer thread owns: its SQLite connection and the file it wrote last whose
    `landed` mark is not committed yet (see _land)."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        self.unconfirmed: list[int] = []


class LandingWriter:
    """The writers of this process: `threads` threads take queued requests as groups and
    validate, deduplicate and land them. While one group waits for its fsyncs (which release
    the GIL), another is validated and claimed: the disk and the CPU work at the same time, and
    ext4 commits concurrent fsyncs together."""

    def __init__(
        self, settings: ApiSettings, max_group_rows: int = 20_000, threads: int | None = None
    ) -> None:
        self.settings = settings
        self.max_group_rows = max_group_rows
        self.meters = settings.known_meters()
        self._queue: queue.Queue = queue.Queue(maxsize=settings.max_queued_requests)
        count = settings.writer_threads if threads is None else threads
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"landing-writer-{n}", daemon=True)
            for n in range(max(1, count))
        ]
        self._names = itertools.count()
        self._names_lock = threading.Lock()
        self._started = threading.Barrier(len(self._threads) + 1)
        self._recovered = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self.stop()
            raise self._startup_error

    def stop(self) -> None:
        """Finish every queued request, then stop."""
        alive = [thread for thread in self._threads if thread.is_alive()]
        for _ in alive:
            self._queue.put(_STOP)  # each thread takes exactly one
        for thread in alive:
            thread.join()

    def submit(self, tenant: Tenant, items: Items) -> Future:
        future: Future = Future()
        try:
            self._queue.put_nowait(_Submission(tenant, items, future))
        except queue.Full:
            raise Busy("the landing writer is saturated; retry shortly") from None
        return future

    def _run(self, number: int) -> None:
        lane = None
        try:
            if number == 0:
                # Settle what a previous life left before any thread claims ids.
                ApiState(self.settings.state_path, self.settings.landing_dir).recover()
                self._recovered.set()
            else:
                self._recovered.wait()
            lane = _Lane(ApiState(self.settings.state_path, self.settings.landing_dir))
        except BaseException as error:
            self._startup_error = error
            self._recovered.set()
        self._started.wait()
        if lane is None or self._startup_error is not None:
            if lane is not None:
                lane.state.close()
            # stop() still sends this thread a _STOP: take it, so that others get theirs.
            while self._queue.get() is not _STOP:
                pass
            return
        try:
            while True:
                try:
                    first = self._queue.get(
                        timeout=CONFIRM_AFTER_SECONDS if lane.unconfirmed else None
                    )
                except queue.Empty:
                    lane.state.confirm(lane.unconfirmed)
                    lane.unconfirmed = []
                    continue
                if first is _STOP:
                    return
                group = [first]
                rows = len(first.items.rows)
                stop = False
                while rows < self.max_group_rows:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    group.append(nxt)
                    rows += len(nxt.items.rows)
                self._process(lane, group)
                if stop:
                    return
        finally:
            if lane.unconfirmed:
                lane.state.confirm(lane.unconfirmed)
            lane.state.close()

    def _process(self, lane: _Lane, group: list[_Submission]) -> None:
        try:
            results = self._land(lane, group)
        except BaseException as error:
            for submission in group:
                submission.future.set_exception(error)
            return
        for submission, result in zip(group, results, strict=True):
            submission.future.set_result(result)

    def _land(self, lane: _Lane, group: list[_Submission]) -> list[IngestResult]:
        received_at = datetime.now(UTC)
        rows = [row for submission in group for row in submission.items.rows]
        parsed = validated_rows(raw_frame(rows), latest_allowed_ts=received_at + FUTURE_TOLERANCE)
        account_allowed = pl.concat(
            [
                pl.Series([row[ACCOUNT] for row in submission.items.rows], dtype=pl.String).is_in(
                    list(submission.tenant.accounts)
                )
                for submission in group
            ]
        )
        checked = parsed.select(
            reason=pl.when(pl.col("reason").is_not_null())
            .then(pl.col("reason"))
            .when(~pl.col("meter_code").is_in(list(self.meters)))
            .then(pl.lit("unknown_meter"))
            .when(~pl.lit(account_allowed))
            .then(pl.lit("account_not_allowed")),
            body_key=pl.concat_str(
                [
                    pl.col("account_id"),
                    pl.col("meter_code"),
                    pl.col("value").cast(pl.String),
                    pl.col("event_ts").cast(pl.String),
                    pl.col("properties").fill_null(""),
                ],
                separator="\x1f",
            ),
        )
        reasons = checked.get_column("reason").to_list()
        body_keys = checked.get_column("body_key").to_list()

        results = [IngestResult() for _ in group]
        # (tenant, client id) -> body hash of its first occurrence in this group
        first_seen: dict[tuple[str, str], bytes] = {}
        candidates: dict[str, list[tuple[str, bytes]]] = {}
        # rows to land: (submission index, item index, row)
        pending: list[tuple[int, int, tuple]] = []
        blake2b = hashlib.blake2b
        position = 0
        for number, submission in enumerate(group):
            tenant_id = submission.tenant.tenant_id
            items = submission.items
            result = results[number]
            tenant_candidates = candidates.setdefault(tenant_id, [])
            for index, row in enumerate(items.rows):
                reason = reasons[position]
                body_key = body_keys[position]
                position += 1
                client_id = items.client_ids[index]
                if reason is None:
                    body_hash = blake2b(body_key.encode(), digest_size=BODY_HASH_BYTES).digest()
                    key = (tenant_id, client_id)
                    seen = first_seen.setdefault(key, body_hash)
                    if seen is body_hash:
                        tenant_candidates.append((client_id, body_hash))
                        pending.append((number, index, row))
                        continue
                    if seen == body_hash:
                        result.duplicate += 1
                        continue
                    reason = "conflict"
                result.errors.append(ItemError(index, client_id, reason, items.lines[index]))

        if not pending:
            return results

        name = self._file_name(received_at)
        # The claim also marks the previous group's file landed: one commit (one fsync) fewer
        # per group. Until then that file is `pending` with its file on disk, which recover()
        # and claim() already treat as landed, so answering 202 before the mark loses nothing.
        file_id, known = lane.state.claim(name, candidates, confirm=lane.unconfirmed)
        lane.unconfirmed = []
        received_text = received_at.isoformat()
        lines = []
        for number, index, row in pending:
            submission = group[number]
            status = known.get((submission.tenant.tenant_id, submission.items.client_ids[index]))
            if status is None:
                lines.append(_landing_line(row, received_text))
                results[number].accepted += 1
            elif status.status == "duplicate":
                results[number].duplicate += 1
            else:
                results[number].errors.append(
                    ItemError(
                        index,
                        submission.items.client_ids[index],
                        status.status,
                        submission.items.lines[index],
                    )
                )
        if not lines:
            lane.state.release(file_id)
        else:
            try:
                write_durably(self.settings.landing_dir / name, b"".join(lines))
            except BaseException:
                lane.state.release(file_id)
                raise
            lane.unconfirmed = [file_id]
        for result in results:
            result.errors.sort(key=lambda error: error.index)
        return results

    def _next_name(self) -> int:
        with self._names_lock:
            return next(self._names)

    def _file_name(self, received_at: datetime) -> str:
        """api/received_date=YYYY-MM-DD/<time>-<pid>-<n>.ndjson: time-ordered, unique."""
        return (
            f"{self.settings.api_landing_dir.name}/received_date={received_at:%Y-%m-%d}/"
            f"{received_at:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{self._next_name():06d}.ndjson"
        )


def _landing_line(row: tuple, received_at: str) -> bytes:
    line = {
        "uniqueId": row[UNIQUE_ID],
        "account": row[ACCOUNT],
        "meter": row[METER],
        "value": row[VALUE],
        "ts": row[TS],
    }
    if row[PROPERTIES] is not None:
        line["properties"] = orjson.Fragment(row[PROPERTIES])
    line["receivedAt"] = received_at
    return orjson.dumps(line) + b"\n"


def write_durably(path: Path, data: bytes) -> None:
    """Write a whole file so that once this returns it survives a crash, and so that readers
    never see part of it: temporary hidden name, fsync, rename, fsync of the directory."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        for ancestor in (directory.parent, directory.parent.parent):
            fsync_path(ancestor)
    temporary = directory / f".{path.name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_path(directory)
