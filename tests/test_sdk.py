"""The Python SDK against a live server on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from decimal import Decimal

import pytest

from dagster_billing.api.process import ServerProcess, free_port
from dagster_billing.sdk import BillingClient, new_unique_id
from tests.api_helpers import TS, create_key, landed_lines


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sdk") / "data"
    key = create_key(data_dir, "sdk", "acct_meridian")
    process = ServerProcess(data_dir).start()
    yield process, key
    process.stop()


def test_made_ids_are_uuid7s_that_sort_by_the_time_they_were_made():
    """Time-ordered ids: the API's claim table appends them (decision 118)."""
    made = []
    for _ in range(3):
        made += [new_unique_id() for _ in range(1_000)]
        time.sleep(0.002)  # the next ones fall in a later millisecond
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(hex=unique_id).version == 7 for unique_id in made)
    # Within a millisecond the order is random; across milliseconds it is the time's.
    milliseconds = [int(unique_id[:12], 16) for unique_id in made]
    assert milliseconds == sorted(milliseconds)
    assert abs(milliseconds[-1] - time.time_ns() // 1_000_000) < 1_000


def test_records_are_batched_and_flushed_on_close(server):
    process, key = server
    with BillingClient(process.url, key, batch_size=10, flush_interval=60) as client:
        ids = [client.record("api.requests", "acct_meridian", n, ts=TS) for n in range(23)]
        ids.append(client.record("compute.gpu_seconds", "acct_meridian", Decimal("0.125"), ts=TS))
        ids.append(
            client.record(
                "tokens.generated", "acct_meridian", 1500, ts=TS, properties={"model": "gpt-4o"}
            )
        )
        ids.append(client.record("storage.gb_hours", "acct_meridian", 1e-5, ts=TS))
    assert client.stats.sent_batches == 3
    assert (client.stats.accepted, client.stats.rejected, client.stats.failed) == (26, 0, 0)
    assert len(set(ids)) == 26
    assert all(uuid.UUID(hex=unique_id).version == 7 for unique_id in ids)
    lines = {line["uniqueId"]: line for line in landed_lines(process.data_dir)}
    assert {f"sdk:{unique_id}" for unique_id in ids} <= set(lines)
    assert lines[f"sdk:{ids[23]}"]["value"] == "0.125"
    assert lines[f"sdk:{ids[24]}"]["properties"] == {"model": "gpt-4o"}
    assert lines[f"sdk:{ids[25]}"]["value"] == "0.00001"


def test_a_resent_event_is_a_duplicate_and_bad_items_are_kept(server):
    process, key = server
    with BillingClient(process.url, key) as first:
        first.record("api.requests", "acct_meridian", 1, ts=TS, unique_id="sdk-fixed-1")
    with BillingClient(process.url, key) as second:
        second.record("api.requests", "acct_meridian", 1, ts=TS, unique_id="sdk-fixed-1")
        second.record("api.requests", "acct_meridian", 1, ts="last tuesday", unique_id="sdk-bad")
    assert (second.stats.accepted, second.stats.duplicate, second.stats.rejected) == (0, 1, 1)
    [rejected] = second.rejected
    assert (rejected.event["uniqueId"], rejected.reason) == ("sdk-bad", "bad_timestamp")


def test_batches_are_retried_until_the_server_answers(tmp_path):
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "sdk", "acct_meridian")
    server = ServerProcess(data_dir, port=free_port())
    client = BillingClient(server.url, key, batch_size=5, max_attempts=30, max_backoff=1.0)
    try:
        for n in range(5):
            client.record("api.requests", "acct_meridian", n, ts=TS, unique_id=f"late-{n}")
        starter = threading.Timer(1.5, server.start)
        starter.start()
        assert client.flush(timeout=120)
        starter.join()
    finally:
        client.close()
        server.stop()
    assert client.stats.retries >= 1
    assert (client.stats.accepted, client.stats.failed) == (5, 0)
    assert sorted(line["uniqueId"] for line in landed_lines(data_dir)) == [
        f"sdk:late-{n}" for n in range(5)
    ]


def test_events_are_flushed_when_the_program_exits(server):
    process, key = server
    script = textwrap.dedent(
        f"""
        from dagster_billing.sdk import BillingClient
        client = BillingClient({process.url!r}, {key!r}, batch_size=1000, flush_interval=3600)
        for n in range(7):
            client.record("api.requests", "acct_meridian", 1, ts={TS!r}, unique_id=f"atexit-{{n}}")
        """
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert time.monotonic() - started < 60
    ids = {line["uniqueId"] for line in landed_lines(process.data_dir)}
    assert {f"sdk:atexit-{n}" for n in range(7)} <= ids
