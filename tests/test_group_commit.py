"""The landing writer's group commit, in process: several requests share one file, one claim and
one set of fsyncs, several writer threads work at once, and still every request is answered only
once its own events are in a renamed landing file and its ids are in the ledger."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from concurrent.futures import Future

import orjson
import pytest

from dagster_billing.api import ingest
from dagster_billing.api.ingest import LandingWriter, items_from_json
from dagster_billing.api.settings import ApiSettings
from dagster_billing.api.state import ApiState, Claim, Tenant, read_file_ids
from tests.api_helpers import TS, event, landed_lines

TENANT = Tenant("acme", frozenset({"acct_meridian"}))


def _body(request: int, size: int = 50) -> bytes:
    return orjson.dumps({"measurements": [event(f"r{request}-{n}", value=n) for n in range(size)]})


def _ledger(settings: ApiSettings) -> set[str]:
    db = sqlite3.connect(settings.state_path)
    try:
        return {uid for (uid,) in db.execute("select unique_id from events")}
    finally:
        db.close()


@pytest.mark.parametrize("threads", [1, 3])
def test_each_answer_comes_after_its_events_are_durable(tmp_path, monkeypatch, threads):
    settings = ApiSettings(data_dir=tmp_path / "data")
    writes: list[int] = []
    release = threading.Event()
    real_write = ingest.write_durably

    def slow_write(path, data):
        # Hold the first file until more requests are queued: they must form a group.
        release.wait(10)
        real_write(path, data)
        writes.append(data.count(b"\n"))

    monkeypatch.setattr(ingest, "write_durably", slow_write)
    writer = LandingWriter(settings, threads=threads)
    writer.start()
    problems: list[str] = []

    def check(number: int, future: Future) -> None:
        # Runs in the writer thread as the answer is given: the events must already be on disk
        # under their final name, and their ids claimed.
        result = future.result()
        on_disk = {line["uniqueId"] for line in landed_lines(settings.data_dir)}
        ids = {f"acme:r{number}-{n}" for n in range(50)}
        if result.accepted != 50:
            problems.append(f"request {number}: {result.to_dict()}")
        if not ids <= on_disk:
            problems.append(f"request {number} answered before its file was renamed")
        if not {i.split(":", 1)[1] for i in ids} <= _ledger(settings):
            problems.append(f"request {number} answered before its ids were committed")

    try:
        futures = []
        for number in range(40):
            future = writer.submit(TENANT, items_from_json(TENANT, _body(number), 1000))
            future.add_done_callback(lambda f, number=number: check(number, f))
            futures.append(future)
        release.set()
        for future in futures:
            future.result(timeout=60)
    finally:
        writer.stop()
    assert problems == []
    assert sum(writes) == 40 * 50
    # Group commit: fewer files (and fsyncs) than requests.
    assert len(writes) < 40
    assert max(writes) > 50
    lines = landed_lines(settings.data_dir)
    assert len(lines) == len({line["uniqueId"] for line in lines}) == 40 * 50


def test_stop_drains_every_queued_request_with_several_threads(tmp_path):
    settings = ApiSettings(data_dir=tmp_path / "data")
    writer = LandingWriter(settings, threads=3)
    writer.start()
    futures = [
        writer.submit(TENANT, items_from_json(TENANT, _body(number, 10), 1000))
        for number in range(60)
    ]
    writer.stop()
    assert all(future.done() for future in futures)
    assert sum(future.result().accepted for future in futures) == 600
    assert len(landed_lines(settings.data_dir)) == 600
    db = sqlite3.connect(settings.state_path)
    [(pending,)] = db.execute("select count(*) from files where state = 'pending'").fetchall()
    [(landed,)] = db.execute("select coalesce(sum(events), 0) from landed_files").fetchall()
    db.close()
    assert (pending, landed) == (0, 600)


def test_the_same_id_in_two_threads_is_landed_once(tmp_path):
    """Two requests with the same ids, validated by different threads at the same time: the
    SQLite claim lets one land them; the other gets duplicate or in_flight, never a second line."""
    settings = ApiSettings(data_dir=tmp_path / "data")
    writer = LandingWriter(settings, threads=2)
    writer.start()
    try:
        futures = [
            writer.submit(TENANT, items_from_json(TENANT, _body(0, 200), 1000)) for _ in range(8)
        ]
        results = [future.result(timeout=60) for future in futures]
    finally:
        writer.stop()
    assert sum(result.accepted for result in results) == 200
    for result in results:
        reasons = {error.reason for error in result.errors}
        assert reasons <= {"in_flight"}
        assert result.accepted + result.duplicate + len(result.errors) == 200
    assert len(landed_lines(settings.data_dir)) == 200


def test_a_retried_batch_records_no_file_and_reads_no_other_claims(tmp_path):
    """A group whose every id is known (a retry) records no file, so nothing is given back:
    giving back a file's ids reads every claim ever made while holding the write lock, seconds
    at 100M claims, and is left to failed writes (decision 118). A failed write's release
    still gives back its own ids and only those."""
    data = tmp_path / "data"
    state = ApiState(data / "api" / "state.sqlite3", data / "landing")
    try:
        kept, _ = state.claim("api/kept.ndjson", {"acme": [("a", b"h" * 16), ("b", b"h" * 16)]})
        state.confirm([kept])
        retried, known = state.claim(
            "api/retry.ndjson", {"acme": [("a", b"h" * 16), ("b", b"x" * 16)]}
        )
        assert retried is None
        assert known == {("acme", "a"): Claim("duplicate"), ("acme", "b"): Claim("conflict")}
        failed, _ = state.claim("api/failed.ndjson", {"acme": [("c", b"h" * 16)]})
        assert read_file_ids(state.path, failed, limit=10) == ["acme:c"]
        state.release(failed)
        assert read_file_ids(state.path, kept, limit=10) == ["acme:a", "acme:b"]
        assert read_file_ids(state.path, failed, limit=10) == []
    finally:
        state.close()
    db = sqlite3.connect(data / "api" / "state.sqlite3")
    try:
        files = db.execute("select path, state from files order by file_id").fetchall()
    finally:
        db.close()
    assert files == [("api/kept.ndjson", "landed"), ("api/failed.ndjson", "abandoned")]


def test_a_retry_through_the_writer_is_answered_as_duplicates_without_a_file(tmp_path):
    settings = ApiSettings(data_dir=tmp_path / "data")
    writer = LandingWriter(settings, threads=1)
    writer.start()
    try:
        first = writer.submit(TENANT, items_from_json(TENANT, _body(0), 1000)).result(30)
        again = writer.submit(TENANT, items_from_json(TENANT, _body(0), 1000)).result(30)
    finally:
        writer.stop()
    assert (first.accepted, again.accepted, again.duplicate, again.rejected) == (50, 0, 50, 0)
    assert len(landed_lines(settings.data_dir)) == 50
    db = sqlite3.connect(settings.state_path)
    try:
        assert db.execute("select count(*), min(state) from files").fetchall() == [(1, "landed")]
    finally:
        db.close()


def test_writers_take_turns_on_the_state_lock_file(tmp_path):
    """Every claim waits for the `<state>.lock` flock (which wakes the next writer as soon as one
    commits), not only for SQLite's lock (whose busy handler sleeps and polls). While someone
    else holds the flock, a request is not answered; once it lets go, it is."""
    settings = ApiSettings(data_dir=tmp_path / "data")
    writer = LandingWriter(settings, threads=2)
    writer.start()
    try:
        with settings.state_path.with_name(settings.state_path.name + ".lock").open("ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            future = writer.submit(TENANT, items_from_json(TENANT, _body(0), 1000))
            with pytest.raises(TimeoutError):
                future.result(timeout=0.5)
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert future.result(timeout=30).accepted == 50
    finally:
        writer.stop()
    assert len(landed_lines(settings.data_dir)) == 50


def test_one_group_of_two_tenants_sorts_every_item_as_alone(tmp_path):
    """Requests of two tenants in one group: ids are per tenant, and within a request a repeat
    is a duplicate (same body) or a conflict (another body), each item answered by its index."""
    settings = ApiSettings(data_dir=tmp_path / "data")
    other = Tenant("beta", frozenset({"acct_aurora"}))
    acme = [
        event("x1"),
        event("x2"),
        event("x1"),
        event("x2", value=2),
        {**event("x5"), "meter": ""},
        event("x3", account="acct_aurora"),
    ]
    beta = [event("x1", account="acct_aurora"), event("x4", account="acct_aurora")]
    writer = LandingWriter(settings, threads=1)
    writer.start()
    try:
        with settings.state_path.with_name(settings.state_path.name + ".lock").open("ab") as lock:
            # The first request waits for the lock inside its claim; the next two queue behind
            # it and are taken together.
            fcntl.flock(lock, fcntl.LOCK_EX)
            first = writer.submit(TENANT, items_from_json(TENANT, _body(0, 5), 1000))
            with pytest.raises(TimeoutError):
                first.result(timeout=0.3)
            futures = [
                writer.submit(TENANT, items_from_json(TENANT, orjson.dumps(acme), 1000)),
                writer.submit(other, items_from_json(other, orjson.dumps(beta), 1000)),
            ]
            fcntl.flock(lock, fcntl.LOCK_UN)
        results = [future.result(timeout=30).to_dict() for future in (first, *futures)]
    finally:
        writer.stop()
    assert results[0]["accepted"] == 5
    errors = [
        (error["index"], error["uniqueId"], error["reason"]) for error in results[1]["errors"]
    ]
    assert (results[1]["accepted"], results[1]["duplicate"]) == (2, 1)
    assert errors == [
        (3, "x2", "conflict"),
        (4, "x5", "missing_meter"),
        (5, "x3", "account_not_allowed"),
    ]
    assert (results[2]["accepted"], results[2]["errors"]) == (2, [])
    files = sorted((settings.data_dir / "landing" / "api").rglob("*.ndjson"))
    assert len(files) == 2  # the two later requests shared one file
    landed = [line["uniqueId"] for line in landed_lines(settings.data_dir)][5:]
    assert landed == ["acme:x1", "acme:x2", "beta:x1", "beta:x4"]


def test_landing_lines_are_what_the_ndjson_landing_reads(tmp_path):
    """Each landed line is the event's fields as JSON text (escapes included), the properties
    as their canonical JSON (keys sorted, fractions as text) and receivedAt, in this order."""
    settings = ApiSettings(data_dir=tmp_path / "data")
    odd = 'a"b\\c\u00e9\x01\u2028</s>'
    items = [
        event(odd, value=1.50, properties={"b": {"x": 1.5}, "a": "y"}),
        event("plain", value="2"),
    ]
    writer = LandingWriter(settings, threads=1)
    writer.start()
    try:
        result = writer.submit(TENANT, items_from_json(TENANT, orjson.dumps(items), 1000))
        assert result.result(timeout=30).accepted == 2
    finally:
        writer.stop()
    [path] = (settings.data_dir / "landing" / "api").rglob("*.ndjson")
    first, second = path.read_bytes().splitlines()
    received = orjson.loads(first)["receivedAt"]
    fields = {"account": "acct_meridian", "meter": "api.requests"}
    assert first == orjson.dumps(
        {
            "uniqueId": f"acme:{odd}",
            **fields,
            "value": "1.5",
            "ts": TS,
            "properties": {"a": "y", "b": {"x": "1.5"}},
            "receivedAt": received,
        }
    )
    assert second == orjson.dumps(
        {"uniqueId": "acme:plain", **fields, "value": "2", "ts": TS, "receivedAt": received}
    )
