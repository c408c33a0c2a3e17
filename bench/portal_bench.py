"""Customer portal: server time per page for accounts with 12 months of history.

    .venv/bin/python bench/portal_bench.py [--events 10000000] [--accounts 8] [--repeat 20]
                                           [--data-dir DIR] [--out bench/results/portal.json]

Builds a warehouse once (reused when DIR already holds a snapshot): `billing generate` writes
`--events` over 2026-01-01 .. 2026-12-03 (337 days: the generator's events may not be later than
the machine's clock), `billing_pipeline` runs that day range and `close_billing_period` the
periods up to October at the clock 2026-12-03T12:00:00, like `make demo`. Every account then has
twelve billing periods: January to October final, November (in its grace days) and December
drafts.

Then, in process (the API app through Starlette's TestClient; no network), for `--accounts`
accounts, each page is requested once with an empty cache ("cold": the snapshot's queries, the
template, the charts) and `--repeat` more times ("warm": the page cached for the snapshot). The
time is the server's own, from the `Server-Timing` header the portal's routes set: `app` the
handler's wall time, `cpu` the process's CPU time meanwhile (requests run one at a time here).
Writes p50/p95/max per page, cold and warm, and the machine's load average to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dagster_billing.analytics import NoSnapshotYet, current_snapshot_path, open_snapshot  # noqa: E402

BIN = Path(sys.executable).parent
START = "2026-01-01"
DAYS = 337
AS_OF = "2026-12-03T12:00:00"
LAST_DAY = "2026-12-03"
LAST_CLOSED_PERIOD = "2026-10-01"


def build(data_dir: Path, events: int) -> dict:
    """Generate and run the pipeline once; how long each step took."""
    env = {
        **os.environ,
        "BILLING_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(data_dir.parent / "dagster_home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    steps = {
        "generate": [
            str(BIN / "billing"), "generate", "--events", str(events), "--start", START,
            "--days", str(DAYS), "--out", str(data_dir / "landing"),
        ],
        "billing_pipeline": _job("billing_pipeline", START, LAST_DAY),
        "close_billing_period": _job("close_billing_period", "2026-01-01", LAST_CLOSED_PERIOD),
    }  # fmt: skip
    seconds = {}
    for name, command in steps.items():
        started = time.monotonic()
        subprocess.run(command, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        seconds[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {seconds[name]} s", flush=True)
    return seconds


def _job(job: str, first: str, last: str) -> list[str]:
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
        "billing/as_of": AS_OF,
    }
    return [
        str(BIN / "dagster"), "job", "execute", "-m", "dagster_billing.definitions", "-j", job,
        "--tags", json.dumps(tags),
    ]  # fmt: skip


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    data = np.array(values)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(data, 50)), 2),
        "p95_ms": round(float(np.percentile(data, 95)), 2),
        "max_ms": round(float(data.max()), 2),
    }


def _accounts(data_dir: Path, count: int) -> list[dict]:
    """The accounts with the most invoice lines in the snapshot (the heaviest pages), each with
    its latest final invoice and its meters."""
    with open_snapshot(data_dir) as connection:
        rows = connection.execute(
            """
            select account_id, count(*) as lines,
                   max(invoice_id) filter (where status = 'final') as final_invoice,
                   count(distinct period_start) as periods
            from billing.fct_invoice_lines group by account_id
            order by lines desc, account_id limit ?
            """,
            [count],
        ).fetchall()
        meters = dict(
            connection.execute(
                "select account_id, min(meter_code) from billing.fct_usage_daily group by all"
            ).fetchall()
        )
    return [
        {"account_id": a, "lines": n, "final_invoice": f, "periods": p, "meter": meters.get(a)}
        for a, n, f, p in rows
    ]


def measure(data_dir: Path, accounts: list[dict], repeat: int) -> dict:
    from fastapi.testclient import TestClient

    from dagster_billing.api.app import create_app
    from dagster_billing.api.settings import ApiSettings
    from dagster_billing.portal.links import SECRET_ENV, link_token

    secret = os.environ.setdefault(SECRET_ENV, "bench-secret-" + "b" * 40)
    timings: dict[str, dict[str, list[float]]] = {}
    with TestClient(create_app(ApiSettings(data_dir=data_dir))) as client:
        for account in accounts:
            client.cookies.clear()
            token = link_token(secret, account["account_id"], timedelta(hours=1))
            assert client.get(f"/portal/s/{token}", follow_redirects=False).status_code == 303
            pages = {
                "usage": "/portal/",
                "trends_30d": "/portal/trends?days=30",
                "trends_90d": "/portal/trends?days=90",
                "invoices": "/portal/invoices",
                "invoice": f"/portal/invoices/{account['final_invoice']}",
                "credits": "/portal/credits",
                "alerts": "/portal/alerts",
                "chart_usage_90d": f"/portal/charts/usage-{account['meter']}.svg?days=90",
                "chart_charges": "/portal/charts/charges.svg",
                "invoice_csv": f"/portal/invoices/{account['final_invoice']}/csv",
                "usage_csv": f"/portal/invoices/{account['final_invoice']}/usage.csv",
                "invoice_pdf": f"/portal/invoices/{account['final_invoice']}/pdf",
            }
            for name, path in pages.items():
                for attempt in range(1 + repeat):
                    response = client.get(path, headers={"accept-language": "en-US"})
                    assert response.status_code == 200, (path, response.status_code)
                    timing = _server_timing(response.headers["server-timing"])
                    kind = "cold" if attempt == 0 else "warm"
                    page = timings.setdefault(name, {})
                    for metric, value in timing.items():
                        page.setdefault(f"{kind}_{metric}", []).append(value)
    return {
        name: {kind: _stats(values) for kind, values in sorted(page.items())}
        | {"all_app": _stats(page["cold_app"] + page["warm_app"])}
        for name, page in timings.items()
    }


def _server_timing(header: str) -> dict[str, float]:
    """`app;dur=12.3, cpu;dur=4.5` -> {"app": 12.3, "cpu": 4.5}."""
    metrics = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        metrics[name] = float(duration)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / "out" / "portal" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "portal.json")
    args = parser.parse_args()

    data_dir = args.data_dir.resolve()
    build_record = data_dir.parent / "build.json"
    try:
        current_snapshot_path(data_dir)
        print(f"reusing {data_dir}", flush=True)
    except NoSnapshotYet:
        data_dir.mkdir(parents=True, exist_ok=True)
        build_record.write_text(json.dumps(build(data_dir, args.events)))
    build_seconds = json.loads(build_record.read_text()) if build_record.exists() else None
    accounts = _accounts(data_dir, args.accounts)
    load_before = os.getloadavg()
    pages = measure(data_dir, accounts, args.repeat)
    load_after = os.getloadavg()
    with open_snapshot(data_dir) as connection:
        [(rows,)] = connection.execute("select count(*) from billing.fct_usage_daily").fetchall()
        [(events,)] = connection.execute(
            "select sum(row_count) from billing.fct_usage_outcome_counts"
        ).fetchall()
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "events_landed": int(events),
        "history": f"{START} .. {LAST_DAY}, clock {AS_OF}",
        "fct_usage_daily_rows": int(rows),
        "accounts": accounts,
        "requests_per_page_and_account": 1 + args.repeat,
        "build_seconds": build_seconds,
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        "cpu_count": os.cpu_count(),
        "pages": pages,
        "target": "p95 <= 200 ms server time per page",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    width = max(len(name) for name in pages)
    print(f"{'page':<{width}}  server time p50/p95 (ms): cold, warm, all; cold CPU p95")
    for name, stats in pages.items():
        cold, warm, cpu = stats["cold_app"], stats["warm_app"], stats["cold_cpu"]
        print(
            f"{name:<{width}}  {cold['p50_ms']:>7} /{cold['p95_ms']:>7}  "
            f"{warm['p50_ms']:>6} /{warm['p95_ms']:>6}  {stats['all_app']['p95_ms']:>7}  "
            f"cpu {cpu['p95_ms']:>6}"
        )
    print(f"load average {load_before} -> {load_after}; wrote {args.out}")


if __name__ == "__main__":
    main()
