"""Bounded load test of POST /v1/measurements on loopback: events/s, latency, nothing lost.

    .venv/bin/python bench/ingest_load.py [--seconds 20] [--concurrency 4 8] [--workers 1 2]
    make bench-ingest

For each (workers, concurrency): a fresh data directory, `billing serve --workers W`, then C
connections each sending batches of 500 events back to back (HTTP/1.1 keep-alive, a minimal
asyncio client so the load generator leaves the CPU to the server; both share this machine).
The events' uniqueIds start with the time in milliseconds, as the SDK's UUIDv7s do (by
default); `--ids random` sends random ones (as `uuid4().hex`, which many clients send), which
the API's SQLite claim table, a B-tree keyed by uniqueId, writes each on a page of its own;
`--ids sequential` sends `c<connection>-b<batch>-<n>`, as results before decision 118 did.
Latency is request sent -> response read. After the window the server is stopped (drained) and
every landing file is read back: count in (accepted by 202s) must equal count landed (lines in
landing files = ids in the SQLite ledger = rows in raw.usage_events after landing them).
Last, issue 23's targets over the result files beside --out (bench/targets.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import cpu_ticks, stolen_pct  # noqa: E402
from bench.targets import RESULTS_DIR, print_summary  # noqa: E402
from dagster_billing.api.process import ServerProcess  # noqa: E402
from dagster_billing.api.state import ApiState  # noqa: E402

ACCOUNTS = ["acct_meridian", "acct_aurora", "acct_bluefin", "acct_driftwood"]
METERS = ["api.requests", "compute.gpu_seconds", "tokens.generated", "storage.gb_hours"]
BATCH = 500
# How the load generator names its events (32 hex digits but for sequential): "time-ordered" as
# the SDK does (dagster_billing.sdk.new_unique_id: UUIDv7, the time in milliseconds first),
# "random" as uuid4().hex, "sequential" in the order they are sent (c<connection>-b<batch>-<n>).
ID_KINDS = ("time-ordered", "random", "sequential")


class Connection:
    """HTTP/1.1 keep-alive over asyncio streams: just enough for POST + Content-Length."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.head = (
            "POST /v1/measurements HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def worker(self) -> int:
        """The server worker process that holds this connection (GET /healthz)."""
        self.writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, body = await self._response()
        assert status == 200, body
        return orjson.loads(body)["worker"]

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def batch_ids(connection_id: int, number: int, batch: int, ids: str) -> list[str]:
    """The uniqueIds of one batch, from one read of the system's random source: time-ordered
    ones are the current millisecond (12 hex digits) and 20 random hex digits, the order the
    SDK's UUIDv7s sort in, without their version and variant bits; random ones 32 random hex
    digits, as uuid4().hex."""
    if ids == "sequential":
        return [f"c{connection_id}-b{number}-{i}" for i in range(batch)]
    if ids == "random":
        digits = os.urandom(16 * batch).hex()
        return [digits[32 * i : 32 * (i + 1)] for i in range(batch)]
    now = f"{time.time_ns() // 1_000_000:012x}"
    digits = os.urandom(10 * batch).hex()
    return [now + digits[20 * i : 20 * (i + 1)] for i in range(batch)]


def batch_body(
    connection_id: int, number: int, ts: str, batch: int = BATCH, ids: str = ID_KINDS[0]
) -> bytes:
    unique_ids = batch_ids(connection_id, number, batch, ids)
    return orjson.dumps(
        {
            "measurements": [
                {
                    "uniqueId": unique_ids[i],
                    "account": ACCOUNTS[i % len(ACCOUNTS)],
                    "meter": METERS[i % len(METERS)],
                    "value": "1.25" if i % 3 else i,
                    "ts": ts,
                    **({"properties": {"model": "gpt-4o"}} if i % len(METERS) == 2 else {}),
                }
                for i in range(batch)
            ]
        }
    )


async def spread_connections(
    port: int, key: str, concurrency: int, workers: int, attempts: int = 200
) -> tuple[list[Connection], list[int]]:
    """`concurrency` connections spread evenly over the server's workers, as a load balancer
    would spread them. The kernel hands a new connection to whichever worker accepts first, and
    an idle one can accept several in a row: a connection that lands on a worker that already
    has its share is closed and opened again. Returns the connections and how many each worker
    holds."""
    share = -(-concurrency // workers)
    held: dict[int, int] = {}
    connections: list[Connection] = []
    tries = 0
    while len(connections) < concurrency:
        connection = Connection(port, key)
        await connection.open()
        worker = await connection.worker()
        tries += 1
        # Past the attempts, spread as well as they allowed: take the rest wherever they land.
        if held.get(worker, 0) < share or tries > attempts:
            held[worker] = held.get(worker, 0) + 1
            connections.append(connection)
        else:
            await connection.close()
    return connections, sorted(held.values(), reverse=True)


async def load(
    port: int,
    key: str,
    concurrency: int,
    warmup: float,
    seconds: float,
    batch: int = BATCH,
    workers: int = 1,
    ids: str = ID_KINDS[0],
) -> dict:
    connections, per_worker = await spread_connections(port, key, concurrency, workers)
    ts = datetime.now(UTC).replace(microsecond=0).isoformat()
    start = time.monotonic()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    totals = {"requests": 0, "accepted": 0, "duplicate": 0, "rejected": 0, "errors": 0}
    measured = {"accepted": 0}

    async def worker(connection_id: int) -> None:
        connection = connections[connection_id]
        number = 0
        try:
            while time.monotonic() < measure_to:
                body = batch_body(connection_id, number, ts, batch, ids)
                number += 1
                sent = time.monotonic()
                status, answer = await connection.post(body)
                done = time.monotonic()
                totals["requests"] += 1
                if status != 202:
                    totals["errors"] += 1
                    print(f"HTTP {status}: {answer[:200]!r}", file=sys.stderr)
                    continue
                counts = orjson.loads(answer)
                for name in ("accepted", "duplicate", "rejected"):
                    totals[name] += counts[name]
                if measure_from <= sent and done <= measure_to:
                    latencies.append(done - sent)
                    measured["accepted"] += counts["accepted"]
        finally:
            await connection.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        **totals,
        "connections_per_worker": per_worker,
        "measured_requests": len(latencies),
        "events_per_s": round(measured["accepted"] / seconds),
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": round(1000 * latencies[-1], 1),
            "mean": round(1000 * statistics.fmean(latencies), 1),
        },
    }


def server_cpu(server: ServerProcess) -> dict[int, float]:
    """CPU seconds used so far by the server and each of its worker processes, by pid."""
    import psutil

    root = psutil.Process(server.process.pid)
    used = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[process.pid] = times.user + times.system
    return used


def count_landed(data_dir: Path, land: bool) -> dict:
    files = sorted((data_dir / "landing").rglob("*.ndjson"))
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    db = sqlite3.connect(data_dir / "api" / "state.sqlite3")
    [(ledger,)] = db.execute("select count(*) from events").fetchall()
    [(pending,)] = db.execute("select count(*) from files where state = 'pending'").fetchall()
    db.close()
    counts = {"files": len(files), "lines": lines, "ledger_ids": ledger, "pending_files": pending}
    if land:
        from dagster_billing.defs.ingest.landing import land_files
        from dagster_billing.defs.ingest.raw_store import raw_store

        started = time.monotonic()
        store = raw_store(data_dir)
        land_files(store, files, landing_dir=data_dir / "landing")
        rows = store.row_counts()
        counts.update(
            raw_usage_events=rows["usage_events"],
            raw_quarantined=rows["usage_quarantine"],
            landing_seconds=round(time.monotonic() - started, 1),
        )
    return counts


def run_case(workers: int, concurrency: int, args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="ingest-load-"))
    data_dir = root / "data"
    key = ApiState(data_dir / "api" / "state.sqlite3", data_dir / "landing").create_key(
        "load", ACCOUNTS
    )
    server = ServerProcess(data_dir, workers=workers).start()
    try:
        server_before = server_cpu(server)
        cpu_before = os.times()
        ticks_before = cpu_ticks()
        result = asyncio.run(
            load(
                server.port,
                key.token,
                concurrency,
                args.warmup,
                args.seconds,
                args.batch,
                workers,
                args.ids,
            )
        )
        cpu_after = os.times()
        ticks_after = cpu_ticks()
        server_after = server_cpu(server)
    finally:
        server.stop()
    result["client_cpu_s"] = round(
        (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system), 1
    )
    by_process = {pid: used - server_before.get(pid, 0.0) for pid, used in server_after.items()}
    result["server_cpu_s"] = round(sum(by_process.values()), 1)
    # How the connections fell on the workers: each worker's share of the server's CPU (the
    # kernel hands a new connection to whichever worker accepts first, so a few keep-alive
    # connections can all land on one).
    result["worker_cpu_shares"] = sorted(
        (round(used / max(result["server_cpu_s"], 1e-9), 2) for used in by_process.values()),
        reverse=True,
    )[:workers]
    result["server_cpu_us_per_event"] = round(
        1e6 * result["server_cpu_s"] / max(result["accepted"], 1), 1
    )
    result["client_cpu_us_per_event"] = round(
        1e6 * result["client_cpu_s"] / max(result["accepted"], 1), 1
    )
    result["cpu_stolen_pct"] = stolen_pct(ticks_before, ticks_after)
    result["landed"] = count_landed(data_dir, land=not args.no_land)
    landed = result["landed"]
    result["lost"] = result["accepted"] - landed["lines"]
    result["ok"] = (
        result["errors"] == 0
        and result["accepted"] == landed["lines"] == landed["ledger_ids"]
        and landed.get("raw_usage_events", landed["lines"]) == landed["lines"]
    )
    shutil.rmtree(root, ignore_errors=True)
    return {
        "workers": workers,
        "concurrency": concurrency,
        "batch": args.batch,
        "ids": args.ids,
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window per case")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--batch", type=int, default=BATCH, help="events per request")
    parser.add_argument(
        "--ids",
        choices=ID_KINDS,
        default=ID_KINDS[0],
        help="uniqueIds: time-ordered as the SDK's (default), random as uuid4's, or sequential",
    )
    parser.add_argument("--no-land", action="store_true", help="skip landing into DuckDB")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    results = []
    for workers in args.workers:
        for concurrency in args.concurrency:
            load_before = os.getloadavg()[0]
            case = run_case(workers, concurrency, args)
            case["load_avg_1m_before"] = round(load_before, 2)
            results.append(case)
            latency = case["latency_ms"]
            print(
                f"workers={workers} concurrency={concurrency} ({args.ids} ids): "
                f"{case['events_per_s']:,} events/s, "
                f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
                f"accepted {case['accepted']:,}, landed {case['landed']['lines']:,}, "
                f"lost {case['lost']}, {'OK' if case['ok'] else 'FAILED'}; "
                f"server {case['server_cpu_us_per_event']} us CPU/event, "
                f"client {case['client_cpu_us_per_event']} us/event, "
                f"worker CPU shares {case['worker_cpu_shares']} "
                f"(load avg before {load_before:.1f}, CPU stolen {case['cpu_stolen_pct']} %)",
                flush=True,
            )
    summary = {
        "machine": {"cpus": os.cpu_count()},
        "seconds": args.seconds,
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print_summary(args.out.parent if args.out else RESULTS_DIR)
    if not all(case["ok"] for case in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
