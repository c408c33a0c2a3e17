"""Event -> rated: how long from POST /v1/measurements until the event counts in fct_rated_usage.

    .venv/bin/python bench/ingest_latency.py [--probes 8] [--history 20000] [--runner watch|daemon]
                                             [--spacing idle|random] [--load EVENTS_PER_S]

Builds a warehouse from `--history` generated events (billing_pipeline, once), starts the API and
either `billing watch` (the sensor logic in a loop, runs in process) or `dagster dev` (the real
landing_sensor on the daemon), then sends one event at a time and polls
GET /v1/accounts/{a}/usage until its quantity includes it. The API reads the snapshot the run
exports right after the dbt models, so "visible" is what a portal would see. Per probe, the run's
event log says where the time went: waiting for the poll, run start-up, landing, dbt (which
materializes billing/fct_rated_usage partway through), the snapshot. Last, issue 23's targets
over the result files beside --out (bench/targets.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.targets import RESULTS_DIR, print_summary  # noqa: E402
from dagster_billing.api.process import ServerProcess, free_port  # noqa: E402
from dagster_billing.api.state import ApiState  # noqa: E402
from dagster_billing.lib.dbt_server import start_server, wait_until_listening  # noqa: E402

BIN = Path(sys.executable).parent
ACCOUNT = "acct_meridian"
# The steady load (--load) goes to another account, so the probes' quantity counts probes only.
LOAD_ACCOUNT = "acct_aurora"
METER = "api.requests"


def run(cmd: list[str], env: dict[str, str], **kwargs) -> None:
    kwargs.setdefault("cwd", REPO)
    subprocess.run(cmd, env=env, check=True, **kwargs)


def prepare(data_dir: Path, dagster_home: Path, history: int, env: dict[str, str]) -> None:
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    run([str(BIN / "dbt"), "parse", "--quiet"], env, cwd=REPO / "dbt_project")
    run(
        [
            str(BIN / "billing"),
            "generate",
            "--events",
            str(history),
            "--out",
            str(data_dir / "landing"),
        ],
        env,
        stdout=subprocess.DEVNULL,
    )
    started = time.monotonic()
    run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "dagster_billing.definitions",
            "-j",
            "billing_pipeline",
            "--tags",
            json.dumps({"dagster/partition": datetime.now(UTC).strftime("%Y-%m-%d")}),
        ],
        env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"warehouse built from {history} events in {time.monotonic() - started:.1f}s")


def start_runner(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    if kind == "watch":
        cmd = [str(BIN / "billing"), "watch", "--interval", "0.5"]
    else:
        cmd = [
            str(BIN / "dagster"),
            "dev",
            "-m",
            "dagster_billing.definitions",
            "-p",
            str(free_port()),
        ]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_dbt_server(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """A dbt fork server, as `make dev` starts one (docs/operations.md#the-dbt-fork-server)."""
    socket_path = root / "dbt.sock"
    log = (root / "dbt-server.log").open("ab")
    process = start_server(socket_path, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    # Until it listens, billing-dbt runs dbt in its own process.
    wait_until_listening(process, socket_path, timeout=60)
    return process, socket_path


class SteadyLoad(threading.Thread):
    """`per_second` events a second to LOAD_ACCOUNT, in ten JSON batches a second, until
    stopped; counts what the API accepted."""

    def __init__(self, url: str, token: str, per_second: int) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.per_second = url, token, per_second
        self.stopped = threading.Event()
        self.accepted = 0
        self.refused = 0

    def run(self) -> None:
        batch = max(1, self.per_second // 10)
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            due, number = time.monotonic(), 0
            while not self.stopped.is_set():
                ts = datetime.now(UTC).isoformat()
                events = [
                    {
                        "uniqueId": f"load-{number + i}",
                        "account": LOAD_ACCOUNT,
                        "meter": METER,
                        "value": 1,
                        "ts": ts,
                    }
                    for i in range(batch)
                ]
                number += batch
                response = client.post("/v1/measurements", json=events)
                if response.status_code == 202:
                    self.accepted += response.json()["accepted"]
                else:
                    self.refused += batch
                due += 0.1
                time.sleep(max(0.0, due - time.monotonic()))


def stop_group(process: subprocess.Popen) -> None:
    """Ctrl-C the runner (and its dbt child); kill it if it does not stop."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def runner_cpu(process: subprocess.Popen) -> float:
    """CPU seconds of the runner and of every live descendant, each with the children it has
    reaped (dbt, run workers: the daemon reaps its own)."""
    import psutil

    root = psutil.Process(process.pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in root.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
        total += child_times.children_user + child_times.children_system
    return total


def quantity(client: httpx.Client, period: str) -> float | None:
    response = client.get(f"/v1/accounts/{ACCOUNT}/usage", params={"period": period})
    if response.status_code != 200:
        return None
    for row in response.json()["usage"]:
        if row["meter_code"] == METER and row["dimension_value"] in ("*", None):
            return float(row["quantity"])
    return 0.0


def wait_until_idle(dagster_home: Path, quiet_for: float = 5.0, limit: float = 300.0) -> None:
    """Return once no rate_new_usage or land_and_rate run has been active for `quiet_for` s."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    # NOT_STARTED too: an in-process run is created seconds before its RUN_START event.
    statuses = [
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    active = dg.RunsFilter(statuses=statuses)
    quiet_since, deadline = time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        if instance.get_run_records(active, limit=1):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_for:
            return
        time.sleep(0.25)
    raise TimeoutError(f"runs still active after {limit}s")


def attribute(probes: list[dict], runs: list[dict]) -> None:
    """Give each probe the run that rated it: the last run to materialize fct_rated_usage after
    the POST and before the probe was read back. A run may have been created before the POST:
    landing takes every file ready when it starts, not only those the sensor named."""
    for probe in probes:
        serving = [
            r for r in runs if r["rated_at"] and probe["acked"] <= r["rated_at"] <= probe["visible"]
        ]
        if serving:
            run = max(serving, key=lambda r: r["rated_at"])
            probe["wait_for_run"] = round(run["first_event"] - probe["acked"], 2)
            probe["rated"] = round(run["rated_at"] - probe["sent"], 2)
            probe["run_job"] = run["job"]
            probe["run_steps"] = run["steps"]
            probe["run_total"] = round(run["last_event"] - run["first_event"], 2)


def run_breakdown(dagster_home: Path, since: float) -> list[dict]:
    """Step timings of the sensor's runs (rate_new_usage, land_and_rate) that started after
    `since` (epoch seconds)."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    runs = []
    records = [
        record
        for job_name in ("rate_new_usage", "land_and_rate")
        for record in instance.get_run_records(dg.RunsFilter(job_name=job_name))
    ]
    for record in records:
        if record.create_timestamp.timestamp() < since:
            continue
        events = instance.all_logs(record.dagster_run.run_id)
        steps: dict[str, dict] = {}
        rated_at = None
        for entry in events:
            if entry.is_dagster_event:
                event = entry.dagster_event
                if event.event_type_value == "STEP_START":
                    steps.setdefault(event.step_key, {})["start"] = entry.timestamp
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                    steps.setdefault(event.step_key, {})["end"] = entry.timestamp
                elif event.event_type_value == "ASSET_MATERIALIZATION":
                    key = event.asset_key.to_user_string()
                    if key == "billing/fct_rated_usage":
                        rated_at = entry.timestamp
        run_start = min((e.timestamp for e in events), default=None)
        run_end = max((e.timestamp for e in events), default=None)
        runs.append(
            {
                "run_id": record.dagster_run.run_id,
                "job": record.dagster_run.job_name,
                "created": record.create_timestamp.timestamp(),
                "first_event": run_start,
                "last_event": run_end,
                "rated_at": rated_at,
                "steps": {
                    key: round(value["end"] - value["start"], 2)
                    for key, value in steps.items()
                    if "start" in value and "end" in value
                },
            }
        )
    return sorted(runs, key=lambda r: r["created"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--runner", choices=["watch", "daemon"], default="watch")
    parser.add_argument(
        "--spacing",
        choices=["idle", "random"],
        default="idle",
        help="idle: send each probe once no run has been active for 5 s (an event on a quiet "
        "system); random: 0.5-3 s after the previous one became visible (it may wait for the "
        "land_and_rate run that follows each fast run)",
    )
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="EVENTS_PER_S",
        help="a steady load of this many events a second (to another account) while probing; "
        "needs --spacing random (a loaded system is never idle)",
    )
    parser.add_argument(
        "--no-dbt-server",
        action="store_true",
        help="every dbt invocation imports dbt afresh (without the fork server `make dev` runs)",
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.load and args.spacing == "idle":
        parser.error("--load needs --spacing random")

    root = Path(tempfile.mkdtemp(prefix="ingest-latency-"))
    data_dir, dagster_home = root / "data", root / "dagster_home"
    env = {
        **os.environ,
        "BILLING_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(dagster_home),
        # What runs set: dbt can then reuse the partial parse (see dagster_billing.watch).
        "BILLING_SEEDS_DIR": "../seeds",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    os.environ.update(BILLING_DATA_DIR=env["BILLING_DATA_DIR"])
    prepare(data_dir, dagster_home, args.history, env)
    api_state = ApiState(data_dir / "api" / "state.sqlite3", data_dir / "landing")
    key = api_state.create_key("latency", [ACCOUNT])
    load_key = api_state.create_key("load", [LOAD_ACCOUNT])
    server = ServerProcess(data_dir).start()
    dbt_server = None
    if not args.no_dbt_server:
        dbt_server, socket_path = start_dbt_server(root, env)
        env["BILLING_DBT_SERVER"] = str(socket_path)
    runner = start_runner(args.runner, env, root / f"{args.runner}.log")
    period = datetime.now(UTC).strftime("%Y-%m")
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key.token}"})
    probes = []
    load = None
    began = time.time()
    try:
        # Let the runner settle: its first pass re-lands (skips) the history's files and rebuilds;
        # a first event must be visible before timing starts.
        settle = client.post(
            "/v1/measurements",
            json={
                "uniqueId": "settle",
                "account": ACCOUNT,
                "meter": METER,
                "value": 1,
                "ts": datetime.now(UTC).isoformat(),
            },
        )
        assert settle.status_code == 202, settle.text
        deadline = time.monotonic() + 5 * args.timeout
        while (quantity(client, period) or 0.0) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        expected = quantity(client, period) or 0.0
        assert expected >= 1, "the runner did not rate the settling event"
        if args.load:
            load = SteadyLoad(server.url, load_key.token, args.load)
            load.start()
            time.sleep(30)  # the probes start once the runs have the load's rhythm
        for number in range(args.probes):
            if args.spacing == "idle":
                wait_until_idle(dagster_home)
            else:
                time.sleep(random.uniform(0.5, 3.0))
            expected += 1
            cpu_before = runner_cpu(runner)
            sent_at = time.time()
            response = client.post(
                "/v1/measurements",
                json={
                    "uniqueId": f"probe-{number}-{sent_at}",
                    "account": ACCOUNT,
                    "meter": METER,
                    "value": 1,
                    "ts": datetime.now(UTC).isoformat(),
                },
            )
            acked_at = time.time()
            assert response.status_code == 202, response.text
            while time.time() - sent_at < args.timeout:
                current = quantity(client, period)
                if current is not None and current >= expected:
                    break
                time.sleep(0.05)
            else:
                raise TimeoutError(f"probe {number} not visible after {args.timeout}s")
            visible_at = time.time()
            cpu = runner_cpu(runner) - cpu_before
            probes.append(
                {
                    "sent": sent_at,
                    "acked": acked_at,
                    "visible": visible_at,
                    "runner_cpu_s": round(cpu, 1),
                }
            )
            print(
                f"probe {number}: 202 in {1000 * (acked_at - sent_at):.0f} ms, visible after "
                f"{visible_at - sent_at:.1f}s, runner CPU {cpu:.1f}s, load {os.getloadavg()[0]:.1f}"
            )
    finally:
        client.close()
        if load is not None:
            load.stopped.set()
            load.join(60)
        stop_group(runner)
        server.stop()
        if dbt_server is not None:
            dbt_server.terminate()
            dbt_server.wait(60)

    runs = run_breakdown(dagster_home, began)
    attribute(probes, runs)
    latencies = [p["visible"] - p["sent"] for p in probes]
    rated = [p["rated"] for p in probes if p.get("rated") is not None]
    summary = {
        "runner": args.runner,
        "spacing": args.spacing,
        "dbt_server": not args.no_dbt_server,
        "load_events_per_s": args.load,
        "load_accepted": load.accepted if load else 0,
        "load_refused": load.refused if load else 0,
        "history_events": args.history,
        "probes": len(probes),
        "visible_s": {
            "min": round(min(latencies), 2),
            "median": round(statistics.median(latencies), 2),
            "max": round(max(latencies), 2),
        },
        "in_fct_rated_usage_s": {
            "median": round(statistics.median(rated), 2) if rated else None,
            "max": round(max(rated), 2) if rated else None,
        },
        "runner_cpu_s_median": round(statistics.median(p["runner_cpu_s"] for p in probes), 1),
        "ack_ms_median": round(1000 * statistics.median(p["acked"] - p["sent"] for p in probes), 1),
        "detail": probes,
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "detail"}, indent=2))
    for probe in probes:
        print(json.dumps({k: v for k, v in probe.items() if k not in ("sent", "acked", "visible")}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print_summary(args.out.parent if args.out else RESULTS_DIR)


if __name__ == "__main__":
    main()
