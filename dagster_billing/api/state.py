"""The ingestion API's own state, in SQLite (WAL): tenants, API keys, idempotency ids, and the
ledger of landing files it wrote.

DuckDB has one writer and it belongs to the pipeline (Dagster, dbt), so the API never opens the
warehouse file. SQLite serializes writers across processes, which is what makes idempotency hold
across several uvicorn workers.

Idempotency is claim-first:
  1. claim   (one transaction): look every id up; new ids are inserted as claimed by a landing
             file that is still `pending`;
  2. write   the landing file (temp name, fsync, rename, fsync of the directory);
  3. confirm (one transaction): the file becomes `landed` and gets a sequence number in
             `landed_files`, which is what the landing sensor follows.
A crash between 1 and 3 leaves a pending file row. If its file exists, it is durable and is
confirmed by recover() (at start-up) or by the next request that meets one of its ids. If it does
not exist, the claim is abandoned when its owner process is gone (or, as a fallback, when it is
older than STALE_CLAIM_SECONDS), and the id can be sent again; otherwise it belongs to a request
still in flight and the id is answered `in_flight` (retry shortly). Owners are known by pid and a
random token per process, so a restarted server that got its old pid back (PID 1 in a container)
is not taken for its previous life. One host only: SQLite and pids do not span machines.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

STALE_CLAIM_SECONDS = 30.0
# The API's body hash (blake2b, ingest.py): compared, never shown.
BODY_HASH_BYTES = 16
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
KEY_PREFIX = "bk_"

SCHEMA = """
create table if not exists tenants (
    tenant_id text primary key,
    created_at text not null
);
create table if not exists tenant_accounts (
    account_id text primary key,
    tenant_id text not null references tenants (tenant_id)
);
create table if not exists api_keys (
    key_id text primary key,
    tenant_id text not null references tenants (tenant_id),
    secret_sha256 text not null,
    created_at text not null,
    revoked_at text
);
create table if not exists files (
    file_id integer primary key autoincrement,
    path text not null unique,
    state text not null check (state in ('pending', 'landed', 'abandoned')),
    claimed_at real not null,
    owner_pid integer not null,
    owner_token text not null,
    events integer not null
);
create index if not exists files_pending on files (state) where state = 'pending';
create table if not exists events (
    tenant_id text not null,
    unique_id text not null,
    body_hash blob not null,
    file_id integer not null references files (file_id),
    primary key (tenant_id, unique_id)
) without rowid;
create table if not exists landed_files (
    seq integer primary key autoincrement,
    file_id integer not null unique references files (file_id),
    path text not null,
    events integer not null,
    landed_at text not null
);
"""


_PROCESS_TOKEN = secrets.token_hex(8)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_flight(claimed_at: float, owner_pid: int, owner_token: str, now: float) -> bool:
    """Whether a pending claim without its file may still be written by a live request."""
    if now - claimed_at >= STALE_CLAIM_SECONDS:
        return False
    if owner_pid == os.getpid():
        return owner_token == _PROCESS_TOKEN
    return _process_alive(owner_pid)


class StateError(Exception):
    """A management command was given something it cannot do (unknown tenant, bad name...)."""


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    accounts: frozenset[str]


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    tenant_id: str
    token: str


@dataclass(frozen=True)
class Claim:
    """What an idempotency id already means when a request meets it."""

    status: str  # "duplicate" | "conflict" | "in_flight"


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _insert_claims(
    db: sqlite3.Connection,
    tenant_id: str,
    file_id: int,
    claims: list[tuple[str, bytes]],
    *,
    take_over: bool,
) -> int:
    """Record (unique_id, body_hash) pairs as claimed by `file_id`, in one statement: the ids as
    a JSON array, the hashes (BODY_HASH_BYTES each) as one blob, cut by position. One SQLite
    step for the whole group, where `executemany` takes one per row and hands the GIL back and
    forth each time: with the event loop and the other writer threads of the process waiting
    for it, that convoy made the insert three times slower than SQLite's own work.

    An id already recorded is left as it is, unless `take_over` (then it is claimed anew).
    Returns how many ids were recorded or taken over."""
    if not claims:
        return 0
    hashes = b"".join(body_hash for _, body_hash in claims)
    if len(hashes) != BODY_HASH_BYTES * len(claims):
        raise ValueError(f"a body hash is not {BODY_HASH_BYTES} bytes")
    on_conflict = (
        "do update set body_hash = excluded.body_hash, file_id = excluded.file_id"
        if take_over
        else "do nothing"
    )
    return db.execute(
        f"""
        insert into events (tenant_id, unique_id, body_hash, file_id)
        select ?, ids.value, substr(?, ids.key * ? + 1, ?), ?
        from json_each(?) as ids
        where true  -- SQLite: an INSERT ... SELECT with an upsert needs a WHERE clause
        on conflict (tenant_id, unique_id) {on_conflict}
        """,
        [
            tenant_id,
            hashes,
            BODY_HASH_BYTES,
            BODY_HASH_BYTES,
            file_id,
            orjson.dumps([unique_id for unique_id, _ in claims]).decode(),
        ],
    ).rowcount


def hash_secret(secret: str) -> str:
    # Keys are 256-bit random tokens, not passwords: a plain SHA-256 cannot be brute-forced and
    # keeps verification cheap on every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(KEY_PREFIX) or "." not in token:
        return None
    key_id, _, secret = token[len(KEY_PREFIX) :].partition(".")
    if not key_id or not secret:
        return None
    return key_id, secret


class ApiState:
    """One SQLite connection per object; make one per thread. Landing file paths are stored
    relative to `landing_dir`, as the landing asset names them."""

    def __init__(self, path: Path, landing_dir: Path) -> None:
        self.path = path
        self.landing_dir = landing_dir
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._writers = path.with_name(path.name + ".lock").open("ab")
        self._db.execute("pragma journal_mode = wal")
        # FULL: a commit is on disk before the API answers 202.
        self._db.execute("pragma synchronous = full")
        self._db.execute("pragma foreign_keys = on")
        with self._write():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def close(self) -> None:
        self._db.close()
        self._writers.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes SQLite's write lock up front (serializes processes).

        Writers first queue on an exclusive flock of `<state>.lock`, which wakes the next one as
        soon as the holder commits. SQLite's own wait is a busy handler that sleeps and retries
        (1, 2, 5, 10 ms ...): with several writer threads and workers that sleeping, not the
        transactions, bounded the ingest rate. SQLite's lock still guards anything that writes
        without the flock."""
        fcntl.flock(self._writers, fcntl.LOCK_EX)
        try:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)

    # -- tenants and keys ------------------------------------------------------------------

    def create_key(self, tenant_id: str, accounts: Iterable[str]) -> CreatedKey:
        """A new key for tenant_id (created if new); `accounts` are added to the tenant."""
        if not TENANT_PATTERN.match(tenant_id):
            raise StateError(
                f"tenant {tenant_id!r}: use 1-32 characters a-z, 0-9, '_' or '-', "
                "starting with a letter or digit"
            )
        accounts = sorted(set(accounts))
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self._write() as db:
            db.execute("insert or ignore into tenants values (?, ?)", [tenant_id, _now_text()])
            owners = dict(
                db.execute(
                    "select account_id, tenant_id from tenant_accounts where account_id in "
                    "(select value from json_each(?))",
                    [orjson.dumps(accounts).decode()],
                ).fetchall()
            )
            taken = sorted(account for account, owner in owners.items() if owner != tenant_id)
            if taken:
                raise StateError(f"accounts already belong to another tenant: {', '.join(taken)}")
            db.executemany(
                "insert or ignore into tenant_accounts values (?, ?)",
                [(account, tenant_id) for account in accounts],
            )
            if not db.execute(
                "select 1 from tenant_accounts where tenant_id = ?", [tenant_id]
            ).fetchone():
                raise StateError(f"tenant {tenant_id!r} has no accounts: pass --account")
            db.execute(
                "insert into api_keys values (?, ?, ?, ?, null)",
                [key_id, tenant_id, hash_secret(secret), _now_text()],
            )
        return CreatedKey(key_id, tenant_id, f"{KEY_PREFIX}{key_id}.{secret}")

    def revoke_key(self, key_id: str) -> None:
        with self._write() as db:
            updated = db.execute(
                "update api_keys set revoked_at = ? where key_id = ? and revoked_at is null",
                [_now_text(), key_id],
            ).rowcount
        if not updated:
            raise StateError(f"no active key {key_id!r}")

    def list_keys(self) -> list[dict]:
        rows = self._db.execute(
            """
            select k.key_id, k.tenant_id, k.created_at, k.revoked_at,
                   (select json_group_array(account_id) from
                       (select account_id from tenant_accounts a
                        where a.tenant_id = k.tenant_id order by account_id))
            from api_keys k order by k.tenant_id, k.created_at
            """
        ).fetchall()
        return [
            {
                "key_id": key_id,
                "tenant": tenant,
                "created_at": created,
                "revoked_at": revoked,
                "accounts": orjson.loads(accounts),
            }
            for key_id, tenant, created, revoked, accounts in rows
        ]

    def authenticate(self, token: str) -> Tenant | None:
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        row = self._db.execute(
            "select tenant_id, secret_sha256 from api_keys where key_id = ? and revoked_at is null",
            [key_id],
        ).fetchone()
        if row is None or not hmac.compare_digest(row[1], hash_secret(secret)):
            return None
        accounts = frozenset(
            account
            for (account,) in self._db.execute(
                "select account_id from tenant_accounts where tenant_id = ?", [row[0]]
            )
        )
        return Tenant(row[0], accounts)

    # -- idempotency -----------------------------------------------------------------------

    def claim(
        self,
        path: str,
        candidates: dict[str, list[tuple[str, bytes]]],
        *,
        confirm: Iterable[int] = (),
    ) -> tuple[int | None, dict[tuple[str, str], Claim]]:
        """Claim (tenant, unique_id) -> body_hash for the landing file `path`.

        Returns the new file's id and, for ids that were already known, what they are: a
        `duplicate` (same body), a `conflict` (different body) or `in_flight` (claimed by a
        request still being written). Everything not in that dict is claimed by `path`. When
        every id was known (a retried batch), no file is recorded and the id is None: there is
        nothing to write, and nothing to give back (`release` finds a file's claims by reading
        every claim, decision 118). Files in `confirm` (written by earlier calls) are marked
        landed in the same commit."""
        now = time.time()
        known: dict[tuple[str, str], Claim] = {}
        with self._write() as db:
            for landed in confirm:
                self._confirm(db, landed)
            file_id = db.execute(
                "insert into files (path, state, claimed_at, owner_pid, owner_token, events) "
                "values (?, 'pending', ?, ?, ?, 0)",
                [path, now, os.getpid(), _PROCESS_TOKEN],
            ).lastrowid
            claimed = 0
            for tenant_id, items in candidates.items():
                # Record the ids no one has claimed yet; usually that is all of them, and the
                # claim is this one statement.
                inserted = _insert_claims(db, tenant_id, file_id, items, take_over=False)
                claimed += inserted
                if inserted == len(items):
                    continue
                found = {
                    unique_id: (body_hash, other_file, state, other_path, claimed_at, owner)
                    for unique_id, body_hash, other_file, state, other_path, claimed_at, *owner in (
                        db.execute(
                            """
                            select e.unique_id, e.body_hash, f.file_id, f.state, f.path,
                                   f.claimed_at, f.owner_pid, f.owner_token
                            from events e join files f using (file_id)
                            where e.tenant_id = ?
                              and e.unique_id in (select value from json_each(?))
                              and e.file_id != ?
                            """,
                            [tenant_id, orjson.dumps([uid for uid, _ in items]).decode(), file_id],
                        )
                    )
                }
                abandoned = []
                written: dict[int, bool] = {}
                for unique_id, body_hash in items:
                    existing = found.get(unique_id)
                    if existing is None:
                        continue  # recorded above
                    old_hash, other_file, state, other_path, claimed_at, owner = existing
                    if state == "pending":
                        if other_file not in written:
                            written[other_file] = (self.landing_dir / other_path).exists()
                            if written[other_file]:
                                self._confirm(db, other_file)
                        if written[other_file]:
                            state = "landed"
                    if state == "landed":
                        status = "duplicate" if old_hash == body_hash else "conflict"
                        known[(tenant_id, unique_id)] = Claim(status)
                    elif state == "pending" and _in_flight(claimed_at, *owner, now):
                        known[(tenant_id, unique_id)] = Claim("in_flight")
                    else:
                        # Abandoned by a writer that died before its file existed: take over.
                        abandoned.append((unique_id, body_hash))
                claimed += _insert_claims(db, tenant_id, file_id, abandoned, take_over=True)
            if not claimed:
                db.execute("delete from files where file_id = ?", [file_id])
                return None, known
            db.execute("update files set events = ? where file_id = ?", [claimed, file_id])
        return file_id, known

    def confirm(self, file_ids: list[int]) -> None:
        """The files are durable: their ids are landed, the sensor may pick them up."""
        with self._write() as db:
            for file_id in file_ids:
                self._confirm(db, file_id)

    @staticmethod
    def _confirm(db: sqlite3.Connection, file_id: int) -> None:
        db.execute("update files set state = 'landed' where file_id = ?", [file_id])
        db.execute(
            """
            insert into landed_files (file_id, path, events, landed_at)
            select file_id, path, events, ? from files where file_id = ?
            on conflict (file_id) do nothing
            """,
            [_now_text(), file_id],
        )

    def release(self, file_id: int) -> None:
        """The file could not be written: give its ids back. (No index serves `file_id`: this
        reads every claim, while holding the write lock, so it is kept for failures.)"""
        with self._write() as db:
            db.execute("delete from events where file_id = ?", [file_id])
            db.execute("update files set state = 'abandoned' where file_id = ?", [file_id])

    def recover(self) -> dict[str, int]:
        """Settle what a crash left: pending files are confirmed if their file exists and released
        if their writer is gone; stale temporary files are removed. Live requests are left alone."""
        confirmed = released = 0
        with self._write() as db:
            pending = db.execute(
                "select file_id, path, claimed_at, owner_pid, owner_token from files "
                "where state = 'pending'"
            ).fetchall()
            for file_id, path, claimed_at, owner_pid, owner_token in pending:
                if (self.landing_dir / path).exists():
                    self._confirm(db, file_id)
                    confirmed += 1
                elif not _in_flight(claimed_at, owner_pid, owner_token, time.time()):
                    db.execute("delete from events where file_id = ?", [file_id])
                    db.execute("update files set state = 'abandoned' where file_id = ?", [file_id])
                    released += 1
        removed = 0
        for temporary in self.landing_dir.glob("api/*/.*.tmp"):
            # A writer that died mid-file: nothing in it was acknowledged.
            try:
                if time.time() - temporary.stat().st_mtime >= STALE_CLAIM_SECONDS:
                    temporary.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return {"confirmed": confirmed, "released": released, "temporary_removed": removed}

    # -- what landing reads ------------------------------------------------------------------


@dataclass(frozen=True)
class AcknowledgedFile:
    """A landing file the API wrote and may have answered 202 for: confirmed (`seq` set, in
    commit order) or still pending (its ids claimed; acknowledged if the file exists)."""

    seq: int | None
    file_id: int
    path: str
    events: int


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection (None before the API ever ran): it never blocks the API's writers."""
    if not path.exists():
        yield None
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        yield db
    finally:
        db.close()


def _rows(db: sqlite3.Connection | None, sql: str, params: list) -> list[tuple]:
    if db is None:
        return []
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise


def read_acknowledged_files(path: Path, after_seq: int, limit: int) -> list[AcknowledgedFile]:
    """Confirmed files after `after_seq` (at most `limit`, in seq order), then pending ones."""
    with _read_only(path) as db:
        confirmed = _rows(
            db,
            "select seq, file_id, path, events from landed_files where seq > ? "
            "order by seq limit ?",
            [after_seq, limit],
        )
        pending = _rows(
            db,
            "select null, file_id, path, events from files where state = 'pending' "
            "order by file_id",
            [],
        )
    return [AcknowledgedFile(*row) for row in confirmed + pending]


def read_confirmed_files(path: Path, through_seq: int) -> list[AcknowledgedFile]:
    """Every confirmed file up to `through_seq`."""
    with _read_only(path) as db:
        rows = _rows(
            db,
            "select seq, file_id, path, events from landed_files where seq <= ? order by seq",
            [through_seq],
        )
    return [AcknowledgedFile(*row) for row in rows]


def read_max_seq(path: Path) -> int:
    with _read_only(path) as db:
        [(seq,)] = _rows(db, "select coalesce(max(seq), 0) from landed_files", []) or [(0,)]
    return seq


def read_file_ids(path: Path, file_id: int, limit: int) -> list[str]:
    """Landed ids (`<tenant>:<uniqueId>`) the API claimed for one of its files."""
    with _read_only(path) as db:
        rows = _rows(
            db,
            "select tenant_id || ':' || unique_id from events where file_id = ? "
            "order by unique_id limit ?",
            [file_id, limit],
        )
    return [unique_id for (unique_id,) in rows]
