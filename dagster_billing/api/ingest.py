"""From request bodies to durable landing files.

Validation is the landing code's own: request items become the same raw rows as lines of a
landing file (`files.record_row`, or `files.json_event_columns` for JSON bodies, decoded straight
into the same columns), checked by the same pandera schema
(`schemas.validated_rows`: the schema's checks in one polars pass, pandera itself for
the rows that fail them), so an item the API rejects would have been quarantined with the same
reason, and an item it accepts lands. On top, the API knows two things landing does not: the
meter catalogue (seeds) and which accounts the caller's tenant owns.

Each writer thread (BILLING_API_WRITER_THREADS per process, default 2) takes the requests queued
since its last pass, up to 1,000 events, as one group: one validation pass, one SQLite claim, one
landing file, one fsync. Under load small requests share groups, which amortizes the fixed costs
per group; a full-size request is its own group, left to a free thread. Every request is
answered only once its group's file and claim are durable (decisions 101, 104, 113).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
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
    json_event_columns,
    ndjson_rows,
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

# Raw column positions (RAW_SCHEMA order).
LINE, UNIQUE_ID = range(2)
assert list(RAW_SCHEMA)[:2] == ["source_line", "unique_id"]

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
    """One request's raw rows as a frame (RAW_SCHEMA, ids qualified by the tenant), with each
    row's client-side uniqueId and, for NDJSON and CSV bodies, its line number."""

    raw: pl.DataFrame
    client_ids: list[str | None]
    lines: list[int] | None

    def __len__(self) -> int:
        return self.raw.height


def _tenant_items(tenant: Tenant, columns: list[list], with_lines: bool) -> Items:
    """Qualify ids with the tenant: idempotency is per tenant, and so is the warehouse's dedupe
    (it dedupes by uniqueId), because the landed id is `<tenant>:<uniqueId>`. `columns` are the
    raw columns in RAW_SCHEMA order."""
    prefix = f"{tenant.tenant_id}:"
    client_ids = columns[UNIQUE_ID]
    columns[UNIQUE_ID] = [
        prefix + unique_id if unique_id is not None and unique_id.strip() else unique_id
        for unique_id in client_ids
    ]
    raw = pl.DataFrame(dict(zip(RAW_SCHEMA, columns, strict=True)), schema=RAW_SCHEMA)
    return Items(raw, client_ids, columns[LINE] if with_lines else None)


def _row_items(tenant: Tenant, rows: list[tuple], with_lines: bool) -> Items:
    columns = [list(column) for column in zip(*rows, strict=True)]
    return _tenant_items(tenant, columns or [[] for _ in RAW_SCHEMA], with_lines)


def _readable(body: bytes) -> bytes:
    """The body without a UTF-8 byte order mark; 400 for UTF-16/32 text."""
    try:
        check_not_foreign_text(body)
    except FileProblem as problem:
        raise BadRequest(str(problem)) from None
    return strip_bom(body)


def items_from_json(tenant: Tenant, body: bytes, max_batch: int) -> Items:
    """One event object, a list of them, or {"measurements": [...]}."""
    body = _readable(body)
    columns = json_event_columns(body)
    if columns is not None:
        _check_count(len(columns[LINE]), max_batch)
        return _tenant_items(tenant, columns, with_lines=False)
    try:
        decoded = decode_json(body)
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
    return _row_items(tenant, rows, with_lines=False)


def items_from_ndjson(tenant: Tenant, body: bytes, max_batch: int) -> Items:
    rows = ndjson_rows(_readable(body))
    _check_count(len(rows), max_batch)
    return _row_items(tenant, rows, with_lines=True)


def items_from_csv(tenant: Tenant, body: bytes, max_rows: int) -> Items:
    try:
        rows = csv_rows(_readable(body))
    except FileProblem as problem:
        raise BadRequest(f"the CSV cannot be read: {problem}") from None
    _check_count(len(rows), max_rows)
    return _row_items(tenant, rows, with_lines=True)


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
        self, settings: ApiSettings, max_group_rows: int = 1_000, threads: int | None = None
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
                rows = len(first.items)
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
                    rows += len(nxt.items)
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
        """Validate, deduplicate, claim and write one group, column by column: Python touches
        each accepted event once (its body hash); the rest is polars and SQLite over whole
        columns, and lets go of the GIL for the other threads meanwhile."""
        received_at = datetime.now(UTC)
        raw = pl.concat([submission.items.raw for submission in group], rechunk=False)
        checked = self._checked(group, raw, received_at)
        answers = _Answers(group)
        candidates = _first_valid(checked, answers)
        if candidates.is_empty():
            return answers.sorted()

        blake2b = hashlib.blake2b
        hashes = [
            blake2b(body_key, digest_size=BODY_HASH_BYTES).digest()
            for body_key in candidates.get_column("body_key").cast(pl.Binary).to_list()
        ]
        rows = candidates.get_column("row").to_list()
        members = candidates.get_column("member").to_list()
        client_ids = [
            answers.client_id(row, member) for row, member in zip(rows, members, strict=True)
        ]
        tenants = [group[member].tenant.tenant_id for member in members]
        claims: dict[str, list[tuple[str, bytes]]] = {}
        for tenant_id, client_id, body_hash in zip(tenants, client_ids, hashes, strict=True):
            claims.setdefault(tenant_id, []).append((client_id, body_hash))

        name = self._file_name(received_at)
        # The claim also marks the previous group's file landed: one commit (one fsync) fewer
        # per group. Until then that file is `pending` with its file on disk, which recover()
        # and claim() already treat as landed, so answering 202 before the mark loses nothing.
        file_id, known = lane.state.claim(name, claims, confirm=lane.unconfirmed)
        lane.unconfirmed = []
        if known:
            fresh = []
            for row, member, tenant_id, client_id in zip(
                rows, members, tenants, client_ids, strict=True
            ):
                status = known.get((tenant_id, client_id))
                fresh.append(status is None)
                if status is None:
                    continue
                if status.status == "duplicate":
                    answers.results[member].duplicate += 1
                else:
                    answers.refuse(row, member, status.status)
            candidates = candidates.filter(pl.Series(fresh, dtype=pl.Boolean))
        accepted = np.bincount(candidates.get_column("member").to_numpy(), minlength=len(group))
        for result, count in zip(answers.results, accepted.tolist(), strict=True):
            result.accepted += count
        # With no candidate left, every id was known (a retry) and the claim recorded no file.
        if not candidates.is_empty():
            if file_id is None:
                raise RuntimeError("the claim recorded no file for ids it did not know")
            lines = _landing_lines(raw, candidates.get_column("row"), received_at.isoformat())
            try:
                write_durably(self.settings.landing_dir / name, lines)
            except BaseException:
                lane.state.release(file_id)
                raise
            lane.unconfirmed = [file_id]
        return answers.sorted()

    def _checked(
        self, group: list[_Submission], raw: pl.DataFrame, received_at: datetime
    ) -> pl.DataFrame:
        """Every row of the group: its position (`row`), request (`member`), landed id
        (`unique_id`: `<tenant>:<uniqueId>`, one per tenant and client id), its reason (null =
        valid: landing's reasons, then unknown_meter and account_not_allowed) and the text its
        body hash is taken of (`body_key`)."""
        parsed = validated_rows(raw, latest_allowed_ts=received_at + FUTURE_TOLERANCE)
        heights = [len(submission.items) for submission in group]
        member = pl.Series("member", np.repeat(np.arange(len(group), dtype=np.int32), heights))
        accounts = {submission.tenant.accounts for submission in group}
        if len(accounts) == 1:
            return parsed.select(*_checks(self.meters, accounts.pop()), member)
        allowed = pl.concat(
            [
                submission.items.raw.get_column("account_id").is_in(
                    list(submission.tenant.accounts)
                )
                for submission in group
            ]
        )
        return parsed.with_columns(allowed.alias(_ALLOWED)).select(
            *_checks(self.meters, None), member
        )

    def _next_name(self) -> int:
        with self._names_lock:
            return next(self._names)

    def _file_name(self, received_at: datetime) -> str:
        """api/received_date=YYYY-MM-DD/<time>-<pid>-<n>.ndjson: time-ordered, unique."""
        return (
            f"{self.settings.api_landing_dir.name}/received_date={received_at:%Y-%m-%d}/"
            f"{received_at:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{self._next_name():06d}.ndjson"
        )


class _Answers:
    """The answers to one group's requests, and where each row of the group came from: its
    request (`member`) and its item index there (`row` minus the request's first row)."""

    def __init__(self, group: list[_Submission]) -> None:
        self.group = group
        self.results = [IngestResult() for _ in group]
        self.starts = list(itertools.accumulate((len(s.items) for s in group), initial=0))

    def client_id(self, row: int, member: int) -> str | None:
        return self.group[member].items.client_ids[row - self.starts[member]]

    def refuse(self, row: int, member: int, reason: str) -> None:
        items = self.group[member].items
        index = row - self.starts[member]
        line = items.lines[index] if items.lines is not None else None
        self.results[member].errors.append(ItemError(index, items.client_ids[index], reason, line))

    def sorted(self) -> list[IngestResult]:
        for result in self.results:
            result.errors.sort(key=lambda error: error.index)
        return self.results


def _first_valid(checked: pl.DataFrame, answers: _Answers) -> pl.DataFrame:
    """The rows to claim: each landed id's (tenant and client id's) first valid row in the
    group. A later valid row with the same body is a duplicate, with another body a conflict;
    invalid rows are refused with their reason. Usually every row is valid and every id new,
    and the only work is finding that out."""
    reasons = checked.get_column("reason")
    valid = checked
    if reasons.null_count() < checked.height:
        invalid = checked.filter(reasons.is_not_null())
        for row, member, reason in invalid.select("row", "member", "reason").rows():
            answers.refuse(row, member, reason)
        valid = checked.filter(reasons.is_null())
    key = pl.col("unique_id")
    first = valid.select(key.is_first_distinct()).to_series()
    if first.all():
        return valid
    repeated = valid.with_columns(
        same=pl.col("body_key") == pl.col("body_key").first().over(key)
    ).filter(~first)
    for row, member, same in repeated.select("row", "member", "same").rows():
        if same:
            answers.results[member].duplicate += 1
        else:
            answers.refuse(row, member, "conflict")
    return valid.filter(first)


_ALLOWED = "__account_allowed"


@functools.lru_cache(maxsize=64)
def _checks(meters: frozenset[str], accounts: frozenset[str] | None) -> tuple[pl.Expr, ...]:
    """`_checked`'s columns, built once per meter catalogue and tenant's accounts (None: read
    whether the account is allowed from the column _ALLOWED): a group is a few milliseconds of
    work, and building these expressions anew took a good part of it."""
    allowed = pl.col(_ALLOWED) if accounts is None else pl.col("account_id").is_in(list(accounts))
    return (
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        pl.col("unique_id"),
        pl.when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(~pl.col("meter_code").is_in(list(meters)))
        .then(pl.lit("unknown_meter"))
        .when(~allowed)
        .then(pl.lit("account_not_allowed"))
        .alias("reason"),
        pl.concat_str(
            [
                pl.col("account_id"),
                pl.col("meter_code"),
                pl.col("value").cast(pl.String),
                pl.col("event_ts").cast(pl.String),
                pl.col("properties").fill_null(""),
            ],
            separator="\x1f",
        ).alias("body_key"),
    )


@functools.cache
def _line_without_end() -> pl.Expr:
    """A landing line up to its receivedAt: uniqueId, account, meter, value, ts and properties
    (when given, as its JSON), which is what the NDJSON landing reads."""
    head = pl.struct(
        uniqueId="unique_id",
        account="account_id",
        meter="meter_code",
        value="value_text",
        ts="ts_text",
    ).struct.json_encode()
    return pl.concat_str(
        [
            head.str.head(-1),  # without its closing brace
            pl.when(pl.col("properties").is_not_null())
            .then(pl.lit(',"properties":') + pl.col("properties"))
            .otherwise(pl.lit("")),
        ]
    )


def _landing_lines(raw: pl.DataFrame, rows: pl.Series, received_at: str) -> bytes:
    """The landing file of these validated raw rows (no text field is null)."""
    end = pl.lit(f',"receivedAt":{orjson.dumps(received_at).decode()}}}\n')
    line = pl.concat_str([_line_without_end(), end])
    return raw[rows].select(line.str.join("")).item().encode()


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
