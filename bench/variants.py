"""Child-process entry points, one per measured variant (`python -m bench.variants KIND ...`).

Each writes a JSON result: `wall_s` (the timed section, without interpreter start-up and imports),
invoice totals as exact decimal strings, outcome counts, and what it knows about where the time
went (Dagster step times, dbt per-model timings from run_results.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psutil

Invoices = dict[str, tuple[str, Decimal]]


class Clock:
    """Wall and CPU time of a section: this process and its waited-for children (e.g. dbt), and
    the dbt fork server's work in it (`server`: its own and its reaped children's CPU)."""

    def __init__(self, server: psutil.Process | None = None) -> None:
        self._server = server

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = self._cpu_now()
        return self

    def __exit__(self, *exc_info) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = self._cpu_now() - self._cpu

    def _cpu_now(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        if self._server is not None:
            times = self._server.cpu_times()
            cpu += times.user + times.system + times.children_user + times.children_system
        return cpu


@contextlib.contextmanager
def dbt_fork_server(
    enabled: bool = True, running: str | None = None
) -> Iterator[psutil.Process | None]:
    """A dbt fork server for this variant's dbt invocations, as `make dev` and `make demo` run
    one (docs/operations.md#the-dbt-fork-server): dbt is imported once, before the clock starts,
    and each invocation forks from it. A child of this process, so the harness samples its
    memory; Clock(server) counts its CPU. Yields None when disabled (dbt in its own process) or
    given the socket of a `running` server (the test suite's: its dbt CPU is not counted)."""
    from dagster_billing.lib.dbt_server import SERVER_ENV, start_server, wait_until_listening

    if running:
        os.environ[SERVER_ENV] = running
        yield None
        return
    if not enabled:
        os.environ.pop(SERVER_ENV, None)
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as directory:
        socket_path = Path(directory) / "dbt.sock"
        server = start_server(socket_path)
        if not wait_until_listening(server, socket_path, timeout=120):
            raise RuntimeError(f"the dbt fork server did not start at {socket_path}")
        os.environ[SERVER_ENV] = str(socket_path)
        try:
            yield psutil.Process(server.pid)
        finally:
            os.environ.pop(SERVER_ENV, None)
            server.terminate()
            server.wait(timeout=60)


def invoices_to_json(invoices: Invoices) -> dict[str, list[str]]:
    return {key: [currency, f"{total:f}"] for key, (currency, total) in sorted(invoices.items())}


def invoices_from_json(data: dict[str, list[str]]) -> Invoices:
    return {key: (currency, Decimal(total)) for key, (currency, total) in data.items()}


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=True))


def dbt_timings(*run_results: Path) -> dict:
    """dbt's own view of a build (the invocations of the variant's runs, summed): total elapsed
    and per-node execution time, slowest first. The landing sensor's fast path writes no
    run_results.json, so an incremental variant's dbt view is its land_and_rate run's; the
    fast run's time is in its step times (`rate_landed_usage`)."""
    elapsed = 0.0
    nodes = []
    for path in run_results:
        data = json.loads(path.read_text())
        elapsed += data["elapsed_time"]
        nodes += [
            {
                "node": result["unique_id"],
                "status": result["status"],
                "execution_s": round(result["execution_time"], 3),
            }
            for result in data["results"]
        ]
    nodes.sort(key=lambda node: node["execution_s"], reverse=True)
    return {
        "elapsed_s": round(elapsed, 3),
        "invocations": len(run_results),
        "models_s": round(
            sum(n["execution_s"] for n in nodes if n["node"].startswith("model.")), 3
        ),
        "tests_s": round(
            sum(n["execution_s"] for n in nodes if n["node"].startswith(("test.", "unit_test."))),
            3,
        ),
        "seeds_s": round(sum(n["execution_s"] for n in nodes if n["node"].startswith("seed.")), 3),
        "nodes": nodes,
    }


def run_floor_variant(args: argparse.Namespace) -> None:
    from bench.floor import run_floor

    with Clock() as clock:
        result = run_floor(Path(args.landing), Path(args.seeds), Path(args.database))
    Path(args.database).unlink(missing_ok=True)
    _write(
        Path(args.out),
        {
            "wall_s": clock.wall_s,
            "cpu_s": clock.cpu_s,
            "invoices": invoices_to_json(result.invoices),
            "outcomes": result.outcomes,
        },
    )


def run_read_landing_variant(args: argparse.Namespace) -> None:
    from bench.floor import read_landing

    out_dir = Path(args.scratch)
    with Clock() as clock:
        rows = read_landing(Path(args.landing), out_dir)
    for part in out_dir.glob("*.parquet"):
        part.unlink()
    _write(Path(args.out), {"wall_s": clock.wall_s, "cpu_s": clock.cpu_s, "rows": rows})


def _warehouse_answer(warehouse) -> tuple[Invoices, dict[str, int]]:
    from bench.postgres import outcome_counts

    with warehouse.connect(read_only=True) as connection:
        invoices = {
            invoice_id: (currency, total)
            for invoice_id, currency, total in connection.execute(
                # Rated lines only: coupons and prepaid credits (seeds) are outside the floor.
                "select invoice_id, currency, subtotal from billing.fct_invoices"
            ).fetchall()
        }
        outcomes = outcome_counts(
            connection.execute(
                "select outcome, reason, count(*) from billing.fct_usage_event_outcomes "
                "group by outcome, reason"
            ).fetchall()
        )
    return invoices, outcomes


# -- What the pipeline variants run ---------------------------------------------------------


def full_build(warehouse, instance, new_files=()):
    """Everything from the landing files into an empty warehouse: plans, landing, dbt build,
    drafts, exports, checks (the `billing_pipeline` job, for today's day partition: every day
    with events is new, so every day is built)."""
    from bench import pipeline
    from dagster_billing.definitions import in_process_job_selection

    del new_files  # landing reads the whole landing directory
    return [
        pipeline.materialize(
            warehouse,
            instance,
            selection=in_process_job_selection("billing_pipeline"),
            partition_key=_today(),
        )
    ]


# THE INCREMENTAL VARIANT: what production runs when new files land. The harness records both
# constants in the results.
INCREMENTAL_PATH = (
    "the runs landing_sensor starts for the new files, with run config naming only them: a "
    "batch under BILLING_BULK_LANDING_BYTES gets rate_new_usage (land it, one dbt run up to "
    "fct_rated_usage, API snapshot) and then land_and_rate; a bulk batch (the 1% batch from 1M "
    "events up) gets land_and_rate alone. land_and_rate is raw/* and everything downstream, "
    "checks included, not plans, the ledger or the pushes, for the sensor's day partition: "
    "usage models are incremental by arrival and rebuild only the days the batch touched; "
    "rating, drafts and marts (one row per account x period x charge) are rebuilt"
)
# False since the usage models are incremental: the batch's cost is landing it, classifying and
# rolling up its own rows, and re-rating the periods (not the events) of every account.
DBT_REBUILDS_FULLY = False


def incremental_build(warehouse, instance, new_files):
    """Bring a built warehouse up to date after `new_files` arrived in its landing directory,
    the way production does it: the runs landing_sensor requests for exactly those files, each
    one as soon as the sensor would ask for it."""
    from datetime import UTC, datetime, timedelta

    from bench import pipeline
    from dagster_billing.definitions import in_process_job_selection
    from dagster_billing.defs.ingest.fast_path import rate_new_usage
    from dagster_billing.defs.ingest.ledger import quiet_seconds
    from dagster_billing.defs.ingest.sensors import (
        QUIET_SECONDS,
        land_and_rate_job,
        landing_run_request,
    )
    from dagster_billing.defs.resources import dbt_resource

    new = sorted(path.relative_to(warehouse.landing_dir).as_posix() for path in new_files)
    # The sensor's view once the new files have been unchanged for the quiet time (the full
    # build recorded every other file in the landing ledger); then once landing has been quiet.
    now = datetime.now(UTC) + timedelta(seconds=quiet_seconds())
    cursor: dict = {}
    results = []
    # At most three ticks: a fast run, a tick that waits for quiet, land_and_rate.
    for _tick in range(3):
        request, cursor = landing_run_request(warehouse, cursor, now=now)
        now += timedelta(seconds=QUIET_SECONDS)
        if request is None:
            continue  # land_and_rate waits for landing to go quiet
        [landing_op] = request.run_config["ops"].values()
        if sorted(landing_op["config"]["paths"]) != new:
            raise RuntimeError(f"landing_sensor named other files than the new ones: {request}")
        if request.job_name == rate_new_usage.name:
            results.append(
                rate_new_usage.execute_in_process(
                    run_config=request.run_config,
                    instance=instance,
                    resources={"warehouse": warehouse, "dbt": dbt_resource()},
                )
            )
            continue
        results.append(
            pipeline.materialize(
                warehouse,
                instance,
                selection=in_process_job_selection(land_and_rate_job.name),
                run_config=request.run_config,
                partition_key=request.partition_key,
            )
        )
        return results
    raise RuntimeError(f"landing_sensor did not end with land_and_rate ({len(results)} runs)")


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d")


# Dagster step keys -> the phase of the pipeline they belong to.
def _phase(step_key: str) -> str:
    if step_key in ("raw_usage", "land_new_files"):
        return "landing"
    if step_key.startswith(("billing_dbt_models", "dbt", "rate_landed_usage")):
        return "dbt"
    if step_key.startswith(("exports", "analytics")) or step_key == "publish_analytics_snapshot":
        return "exports"
    if step_key.startswith("plans"):
        return "plans"
    return "checks"


def run_pipeline_variant(args: argparse.Namespace) -> None:
    import dagster as dg

    from dagster_billing.defs.resources import BillingWarehouse

    target_root = Path(args.dbt_target_path).resolve()
    os.environ["DBT_TARGET_PATH"] = str(target_root)
    warehouse = BillingWarehouse(data_dir=str(Path(args.data_dir).resolve()), engine=args.engine)
    instance = dg.DagsterInstance.ephemeral()
    # Before the clock starts, as a deployment would have them: the definitions loaded, and dbt's
    # partial-parse state for this data directory (dagster-dbt copies it into each invocation's
    # target; without it every dbt call re-parses the project because the profile changed).
    from dagster_billing.definitions import defs

    del defs
    with dbt_fork_server(args.dbt_server, args.dbt_server_socket) as server:
        with warehouse.dbt_environment():
            _dbt_parse(target_root)
        with Clock(server) as clock:
            build = full_build if args.mode == "full" else incremental_build
            results = build(warehouse, instance, [Path(p).resolve() for p in args.new_file])

    run_ids = [result.run_id for result in results]
    steps = {
        stats.step_key: round(stats.end_time - stats.start_time, 3)
        for run_id in run_ids
        for stats in instance.get_run_step_stats(run_id)
        if stats.end_time and stats.start_time
    }
    phases: dict[str, float] = {}
    for step_key, seconds in steps.items():
        phases[_phase(step_key)] = round(phases.get(_phase(step_key), 0.0) + seconds, 3)
    run_results = sorted(
        path
        for run_id in run_ids
        for path in target_root.glob(f"*-{run_id[:7]}-*/run_results.json")
    )
    invoices, outcomes = _warehouse_answer(warehouse)
    _write(
        Path(args.out),
        {
            "wall_s": clock.wall_s,
            "cpu_s": clock.cpu_s,
            "run_id": run_ids[-1],
            "run_ids": run_ids,
            "steps": steps,
            "phases": phases,
            "dbt": dbt_timings(*run_results) if run_results else None,
            "invoices": invoices_to_json(invoices),
            "outcomes": outcomes,
            "incremental_path": INCREMENTAL_PATH if args.mode != "full" else None,
            "dbt_rebuilds_fully": DBT_REBUILDS_FULLY,
            "dbt_server": args.dbt_server,
        },
    )


def _dbt_executable() -> str:
    """dbt-core's own CLI, for the peer's timed build: always a child of this process."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def _dbt_parse(target_path: Path, *extra: str) -> None:
    """`dbt parse` as the pipeline's runs start dbt (billing-dbt: from the fork server when one
    is listening, as in the test suite; else in its own process)."""
    from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
    from dagster_billing.paths import DBT_PROJECT_DIR

    subprocess.run(
        [DBT_EXECUTABLE, "parse", "--quiet", "--target-path", str(target_path), *extra],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )


def run_dbt_variant(args: argparse.Namespace) -> None:
    """`dbt build --target <target>` as a plain CLI run (the Postgres peer), parsed beforehand,
    with the arguments the pipeline's runs use."""
    from dagster_billing.lib.dbt_args import dbt_build_args
    from dagster_billing.paths import DBT_PROJECT_DIR

    target_path = Path(args.dbt_target_path).resolve()
    _dbt_parse(target_path, "--target", args.target)
    with Clock() as clock:
        completed = subprocess.run(
            [
                _dbt_executable(),
                *dbt_build_args(),
                "--target",
                args.target,
                "--target-path",
                str(target_path),
            ],
            cwd=DBT_PROJECT_DIR,
            check=False,
        )
    if completed.returncode != 0:
        sys.exit(completed.returncode)
    _write(
        Path(args.out),
        {
            "wall_s": clock.wall_s,
            "cpu_s": clock.cpu_s,
            "dbt": dbt_timings(target_path / "run_results.json"),
        },
    )


def run_pg_copy_variant(args: argparse.Namespace) -> None:
    """Copy the landed raw tables of a DuckDB warehouse into the Postgres server in BILLING_PG_*."""
    from bench.postgres import LocalPostgres, copy_raw_tables

    pg = LocalPostgres.from_env(dict(os.environ))
    with Clock() as clock:
        rows = copy_raw_tables(Path(args.duckdb), pg, Path(args.scratch))
    _write(Path(args.out), {"wall_s": clock.wall_s, "cpu_s": clock.cpu_s, "rows": rows})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    kinds = parser.add_subparsers(dest="kind", required=True)

    floor = kinds.add_parser("floor", help="the hand-written DuckDB floor on landing files")
    floor.add_argument("--landing", required=True)
    floor.add_argument("--seeds", required=True)
    floor.add_argument("--database", required=True)
    floor.add_argument("--out", required=True)
    floor.set_defaults(run=run_floor_variant)

    read = kinds.add_parser(
        "read-landing", help="DuckDB's read_json/read_csv of the landing files, to Parquet"
    )
    read.add_argument("--landing", required=True)
    read.add_argument("--scratch", required=True)
    read.add_argument("--out", required=True)
    read.set_defaults(run=run_read_landing_variant)

    pipeline = kinds.add_parser("pipeline", help="the Dagster pipeline on a data directory")
    pipeline.add_argument("--data-dir", required=True)
    pipeline.add_argument("--mode", choices=("full", "incremental"), required=True)
    pipeline.add_argument("--new-file", action="append", default=[])
    pipeline.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    pipeline.add_argument("--dbt-target-path", required=True)
    pipeline.add_argument(
        "--no-dbt-server",
        dest="dbt_server",
        action="store_false",
        help="start dbt in its own process for each invocation (default: a dbt fork server)",
    )
    pipeline.add_argument(
        "--dbt-server-socket",
        help="fork dbt from the server already listening there (its CPU is not counted)",
    )
    pipeline.add_argument("--out", required=True)
    pipeline.set_defaults(run=run_pipeline_variant)

    dbt = kinds.add_parser("dbt", help="dbt build against another target (the peer)")
    dbt.add_argument("--target", required=True)
    dbt.add_argument("--dbt-target-path", required=True)
    dbt.add_argument("--out", required=True)
    dbt.set_defaults(run=run_dbt_variant)

    pg_copy = kinds.add_parser("pg-copy", help="copy raw.* from DuckDB into Postgres")
    pg_copy.add_argument("--duckdb", required=True)
    pg_copy.add_argument("--scratch", required=True)
    pg_copy.add_argument("--out", required=True)
    pg_copy.set_defaults(run=run_pg_copy_variant)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Every dbt invocation's run_results.json (per-node timings: dbt_timings) is in the report,
    # whatever the caller's environment says (the test suite turns them off).
    os.environ["DBT_WRITE_JSON"] = "true"
    args.run(args)


if __name__ == "__main__":
    main()
