"""The ingestion API over real HTTP on loopback: a `billing serve` process per module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import duckdb
import httpx
import orjson
import pytest

from dagster_billing.api.process import ServerProcess
from tests.api_helpers import TS, create_key, event, landed_ids, landed_lines
from tests.conftest import FIXTURES, make_warehouse

MAX_BODY = 64 * 1024
MAX_BATCH = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("api") / "data"
    keys = {
        "acme": create_key(data_dir, "acme", "acct_meridian", "acct_aurora"),
        "globex": create_key(data_dir, "globex", "acct_bluefin"),
    }
    process = ServerProcess(
        data_dir,
        env={"BILLING_API_MAX_BODY_BYTES": str(MAX_BODY), "BILLING_API_MAX_BATCH": str(MAX_BATCH)},
    ).start()
    yield process, keys
    process.stop()


def post(server, key: str | None, body, *, path="/v1/measurements", content_type=None):
    process, _ = server
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if isinstance(body, bytes | str):
        content = body
        headers["Content-Type"] = content_type or "application/json"
    else:
        content = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    return httpx.post(f"{process.url}{path}", content=content, headers=headers, timeout=30)


def test_writes_need_a_valid_key(server, tmp_path):
    process, keys = server
    assert post(server, None, event("auth-1")).status_code == 401
    assert post(server, "bk_000000000000.wrong", event("auth-1")).status_code == 401
    assert post(server, "not-a-key", event("auth-1")).status_code == 401
    tampered = keys["acme"][:-2] + ("AA" if not keys["acme"].endswith("AA") else "BB")
    response = post(server, tampered, event("auth-1"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "auth-1" not in {i.split(":", 1)[1] for i in landed_ids(process.data_dir)}


def test_a_revoked_key_is_refused(server):
    from click.testing import CliRunner

    from dagster_billing.cli import main

    process, _ = server
    key = create_key(process.data_dir, "acme")
    key_id = key.removeprefix("bk_").split(".")[0]
    result = CliRunner().invoke(
        main, ["api-keys", "revoke", key_id, "--data-dir", str(process.data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert post(server, key, event("revoked-1")).status_code == 401


def test_keys_are_stored_hashed(server):
    process, keys = server
    state = (process.data_dir / "api" / "state.sqlite3").read_bytes()
    secret = keys["acme"].split(".", 1)[1]
    assert secret.encode() not in state


def test_a_batch_is_accepted_and_landed_durably(server):
    process, keys = server
    batch = [event(f"ok-{n}", value=n) for n in range(3)]
    response = post(server, keys["acme"], {"measurements": batch})
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicate": 0, "rejected": 0, "errors": []}
    lines = {line["uniqueId"]: line for line in landed_lines(process.data_dir)}
    assert {f"acme:ok-{n}" for n in range(3)} <= set(lines)
    assert lines["acme:ok-2"]["value"] == "2"
    assert lines["acme:ok-2"]["account"] == "acct_meridian"


def test_one_event_and_ndjson_bodies(server):
    _, keys = server
    assert post(server, keys["acme"], event("single-1")).json()["accepted"] == 1
    ndjson = b"\n".join(orjson.dumps(event(f"nd-{n}")) for n in range(3)) + b"\n\nnot json\n"
    response = post(server, keys["acme"], ndjson, content_type="application/x-ndjson")
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert body["errors"][0]["reason"] == "malformed_json"
    assert body["errors"][0]["line"] == 5


def test_a_retry_is_free(server):
    process, keys = server
    batch = {"measurements": [event(f"retry-{n}") for n in range(5)]}
    first = post(server, keys["acme"], batch).json()
    second = post(server, keys["acme"], batch).json()
    assert (first["accepted"], first["duplicate"]) == (5, 0)
    assert (second["accepted"], second["duplicate"]) == (0, 5)
    # the same value written differently is the same body
    same = post(server, keys["acme"], event("retry-0", value="1.000")).json()
    assert same["duplicate"] == 1
    ids = landed_ids(process.data_dir)
    assert all(ids.count(f"acme:retry-{n}") == 1 for n in range(5))


def test_same_id_with_another_body_is_a_conflict(server):
    process, keys = server
    assert post(server, keys["acme"], event("conflict-1", value=5)).status_code == 202
    response = post(server, keys["acme"], event("conflict-1", value=6))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": 0,
            "uniqueId": "conflict-1",
            "reason": "conflict",
            "message": "uniqueId was already accepted with a different body",
        }
    ]
    in_one_batch = post(
        server,
        keys["acme"],
        [event("conflict-2"), event("conflict-2"), event("conflict-2", value=9)],
    ).json()
    assert (in_one_batch["accepted"], in_one_batch["duplicate"]) == (1, 1)
    assert [e["reason"] for e in in_one_batch["errors"]] == ["conflict"]
    values = [
        line["value"]
        for line in landed_lines(process.data_dir)
        if line["uniqueId"] == "acme:conflict-1"
    ]
    assert values == ["5"]


def test_idempotency_is_per_tenant(server):
    process, keys = server
    assert post(server, keys["acme"], event("shared-1")).json()["accepted"] == 1
    other = post(server, keys["globex"], event("shared-1", account="acct_bluefin")).json()
    assert other["accepted"] == 1
    ids = landed_ids(process.data_dir)
    assert {"acme:shared-1", "globex:shared-1"} <= set(ids)


def test_bad_items_are_rejected_and_the_rest_accepted(server):
    process, keys = server
    batch = [
        event("partial-ok-1"),
        event("partial-bad-ts", ts="2026-01-05"),
        event("partial-bad-value", value="ten"),
        event("partial-neg", value=-1),
        event("partial-meter", meter="no.such.meter"),
        event("partial-foreign", account="acct_bluefin"),
        event("partial-future", ts="2999-01-01T00:00:00Z"),
        event("partial-precise", value="0.12345678901"),
        {"account": "acct_meridian", "meter": "api.requests", "value": 1, "ts": TS},
        event("partial-props", properties=["not", "an", "object"]),
        event("partial-bool", value=True),
        "not an object",
        event("partial-ok-2", value="0.125", properties={"region": "eu"}),
    ]
    response = post(server, keys["acme"], {"measurements": batch})
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 11)
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (1, "bad_timestamp"),
        (2, "non_numeric_value"),
        (3, "negative_value"),
        (4, "unknown_meter"),
        (5, "account_not_allowed"),
        (6, "future_timestamp"),
        (7, "value_too_precise"),
        (8, "missing_id"),
        (9, "invalid_properties"),
        (10, "non_numeric_value"),
        (11, "malformed_json"),
    ]
    lines = {line["uniqueId"]: line for line in landed_lines(process.data_dir)}
    assert lines["acme:partial-ok-2"]["value"] == "0.125"
    assert lines["acme:partial-ok-2"]["properties"] == {"region": "eu"}
    assert not any(uid.startswith("acme:partial-") and "ok" not in uid for uid in lines)


def test_a_batch_of_only_bad_items_is_422(server):
    _, keys = server
    response = post(server, keys["acme"], [event("all-bad", ts="yesterday")])
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"] == "bad_timestamp"


def test_limits_and_malformed_bodies(server):
    _, keys = server
    too_big = {
        "measurements": [event(f"big-{n}", properties={"pad": "x" * 2000}) for n in range(40)]
    }
    response = post(server, keys["acme"], too_big)
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["message"]

    too_many = post(server, keys["acme"], [event(f"many-{n}") for n in range(MAX_BATCH + 1)])
    assert too_many.status_code == 422
    assert too_many.json() == {
        "error": "batch_too_large",
        "message": f"{MAX_BATCH + 1} measurements in one request; the limit is {MAX_BATCH}",
    }

    malformed = post(server, keys["acme"], b'{"measurements": [')
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "bad_request"
    assert post(server, keys["acme"], b'{"measurements": 5}').status_code == 400
    assert post(server, keys["acme"], b"[]").status_code == 400
    assert post(server, keys["acme"], b"x", content_type="text/plain").status_code == 415


def test_csv_upload_has_the_same_validation(server):
    process, keys = server
    csv_body = (
        "uniqueId,account,meter,value,ts,properties\n"
        f'csv-1,acct_meridian,tokens.generated,1500,{TS},"{{""model"": ""gpt-4o""}}"\n'
        f"csv-2,acct_meridian,api.requests,abc,{TS},\n"
        "csv-3,acct_meridian\n"
        f"csv-4,acct_aurora,api.requests,2,{TS},\n"
    )
    response = post(
        server, keys["acme"], csv_body, path="/v1/measurements/csv", content_type="text/csv"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [(e["line"], e["reason"]) for e in body["errors"]] == [
        (3, "non_numeric_value"),
        (4, "malformed_csv_row"),
    ]
    lines = {line["uniqueId"]: line for line in landed_lines(process.data_dir)}
    assert lines["acme:csv-1"]["properties"] == {"model": "gpt-4o"}


def test_the_api_rejects_what_landing_quarantines(server):
    """The malformed-rows fixture through the API: every structural reason is the one landing
    gives (tests/test_quarantine.py), because both run the same validation code."""
    from tests.test_quarantine import EXPECTED_OUTCOMES

    data = (FIXTURES / "malformed" / "events.ndjson").read_bytes()
    # The fixture's ids are not unique to this test module: run it under a fresh tenant.
    key = create_key(server[0].data_dir, "parity", "acct_helix")
    data = data.replace(b"acct_meridian", b"acct_helix")
    response = post(server, key, data, content_type="application/x-ndjson")
    assert response.status_code == 202
    by_line = {e["line"]: e["reason"] for e in response.json()["errors"]}
    expected = {
        line: reason
        for (name, line), (outcome, reason) in EXPECTED_OUTCOMES.items()
        if name == "events.ndjson" and outcome == "quarantined"
    }
    expected[20] = "account_not_allowed"  # landing: unknown_account (found later, in dbt)
    expected[22] = "conflict"  # landing: a duplicate flagged is_conflicting (in dbt)
    assert by_line == expected


def test_reads_need_a_snapshot_and_stay_within_the_tenant(server):
    process, keys = server
    headers = {"Authorization": f"Bearer {keys['acme']}"}
    usage = httpx.get(f"{process.url}/v1/accounts/acct_meridian/usage", headers=headers)
    assert usage.status_code == 503
    assert usage.headers["retry-after"] == "30"
    foreign = httpx.get(f"{process.url}/v1/accounts/acct_bluefin/estimate", headers=headers)
    assert foreign.status_code == 404
    assert httpx.get(f"{process.url}/v1/accounts/acct_meridian/usage").status_code == 401


def test_a_killed_server_loses_nothing_it_acknowledged(tmp_path):
    """202, then SIGKILL: the landed file is there, a restarted server still knows the ids, and
    the file lands in the warehouse."""
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "acme", "acct_meridian")
    batch = {"measurements": [event(f"crash-{n}", value=n + 1) for n in range(20)]}
    server = ServerProcess(data_dir).start()
    try:
        response = httpx.post(
            f"{server.url}/v1/measurements",
            content=orjson.dumps(batch),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert response.status_code == 202
        assert response.json()["accepted"] == 20
    finally:
        server.kill()
    assert server.process.returncode == -9
    assert sorted(landed_ids(data_dir)) == sorted(f"acme:crash-{n}" for n in range(20))
    assert not list((data_dir / "landing").rglob(".*.tmp"))

    restarted = ServerProcess(data_dir).start()
    try:
        again = httpx.post(
            f"{restarted.url}/v1/measurements",
            content=orjson.dumps(batch),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ).json()
    finally:
        restarted.stop()
    assert (again["accepted"], again["duplicate"]) == (0, 20)

    from dagster_billing.definitions import defs

    warehouse = make_warehouse(tmp_path)
    raw_assets = [a for a in defs.assets if dg.AssetKey(["raw", "usage_events"]) in a.keys]
    dg.materialize(
        raw_assets, resources={"warehouse": warehouse}, instance=dg.DagsterInstance.ephemeral()
    )
    # Landed into the raw Parquet layer (no dbt run has exposed it as raw.* yet).
    [(count, total)] = duckdb.sql(
        f"select count(*), sum(value) from read_parquet('{warehouse.raw_store.files_glob('usage_events')}') "
        "where unique_id like 'acme:crash-%'"
    ).fetchall()
    assert (count, total) == (20, sum(range(1, 21)))


def _claim_without_file(data_dir, tenant: str, unique_id: str, *, in_child: bool) -> None:
    """What a server leaves behind when it dies between claiming an id and writing its file."""
    code = (
        "import sys; from pathlib import Path; from dagster_billing.api.state import ApiState; "
        "d = Path(sys.argv[1]); "
        "ApiState(d / 'api' / 'state.sqlite3', d / 'landing').claim("
        "'api/received_date=2026-01-01/never-written.ndjson' + sys.argv[3], "
        "{sys.argv[2]: [(sys.argv[3], bytes(16))]})"
    )
    if in_child:
        subprocess.run([sys.executable, "-c", code, str(data_dir), tenant, unique_id], check=True)
    else:
        from dagster_billing.api.state import ApiState

        ApiState(data_dir / "api" / "state.sqlite3", data_dir / "landing").claim(
            f"api/received_date=2026-01-01/never-written.ndjson{unique_id}",
            {tenant: [(unique_id, bytes(16))]},
        )


def test_an_id_claimed_by_a_live_writer_is_in_flight(server):
    process, keys = server
    _claim_without_file(process.data_dir, "acme", "orphan-live", in_child=False)
    response = post(server, keys["acme"], event("orphan-live"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"] == "in_flight"


def test_an_id_claimed_by_a_dead_writer_can_be_sent_again(server):
    process, keys = server
    _claim_without_file(process.data_dir, "acme", "orphan-dead", in_child=True)
    assert post(server, keys["acme"], event("orphan-dead")).json()["accepted"] == 1
    assert "acme:orphan-dead" in landed_ids(process.data_dir)
    # The id is now the landed file's: sent once more, it is a duplicate, not landed again.
    again = post(server, keys["acme"], event("orphan-dead")).json()
    assert (again["accepted"], again["duplicate"]) == (0, 1)


def test_idempotency_holds_across_worker_processes(tmp_path):
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "acme", "acct_meridian")
    batch = orjson.dumps({"measurements": [event(f"multi-{n}") for n in range(50)]})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with ServerProcess(data_dir, workers=2) as server, httpx.Client(timeout=60) as client:

        def send(_: int) -> dict:
            return client.post(
                f"{server.url}/v1/measurements", content=batch, headers=headers
            ).json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(16)))
        final = send(0)
    assert sum(answer["accepted"] for answer in answers) == 50
    assert final == {"accepted": 0, "duplicate": 50, "rejected": 0, "errors": []}
    assert sorted(landed_ids(data_dir)) == sorted(f"acme:multi-{n}" for n in range(50))


def test_workers_share_the_port_and_a_killed_one_is_started_again(tmp_path):
    with ServerProcess(tmp_path / "data", workers=2) as server:

        def workers_answering(connections: int = 40) -> set[int]:
            # A new connection each time: the kernel hands it to one worker's own socket. While
            # the suite loads both cores, an answer has taken over 10 s once: wait longer.
            return {
                httpx.get(f"{server.url}/healthz", timeout=30).json()["worker"]
                for _ in range(connections)
            }

        workers = workers_answering()
        assert len(workers) == 2
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        answering: set[int] = set()
        resets = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answering = workers_answering()
            except httpx.TransportError:
                # A connection the kernel queued on the killed worker's socket before the
                # process was gone is reset: a client retries it (the SDK does).
                resets += 1
                continue
            if len(answering) == 2 and killed not in answering:
                break
            time.sleep(0.5)
        assert len(answering) == 2 and killed not in answering
        assert resets < 5  # resets come only while the killed worker's socket is closing


def test_killing_the_server_under_load_loses_and_doubles_nothing(tmp_path):
    """A client sends batches back to back; the server is SIGKILLed mid-stream, restarted, and
    the client re-sends everything (as a client that saw errors would). Every acknowledged event
    was on disk before the restart; afterwards every event is landed exactly once."""
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "acme", "acct_meridian")
    batches = [
        orjson.dumps({"measurements": [event(f"load-{b}-{n}", value=n) for n in range(200)]})
        for b in range(60)
    ]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    server = ServerProcess(data_dir).start()
    acknowledged: list[int] = []
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(timeout=30) as client:
            for number, body in enumerate(batches):
                if stop.is_set():
                    return
                try:
                    response = client.post(
                        f"{server.url}/v1/measurements", content=body, headers=headers
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 202:
                    acknowledged.append(number)

    sender = threading.Thread(target=client_loop)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    sender.join()
    assert 10 <= len(acknowledged) < len(batches)
    on_disk = set(landed_ids(data_dir))
    assert all(f"acme:load-{number}-{n}" in on_disk for number in acknowledged for n in range(200))

    with ServerProcess(data_dir) as restarted, httpx.Client(timeout=30) as client:
        answers = [
            client.post(f"{restarted.url}/v1/measurements", content=body, headers=headers).json()
            for body in batches
        ]
    assert all(answer["rejected"] == 0 for answer in answers)
    assert sum(answer["duplicate"] for answer in answers[: len(acknowledged)]) == 200 * len(
        acknowledged
    )
    ids = landed_ids(data_dir)
    assert len(ids) == len(set(ids)) == 200 * len(batches)
