"""Helpers and shared warehouses of the test suite (docs/testing.md says how to write a fast test).

Helpers: `make_warehouse` (an empty warehouse under a folder), `case_warehouse` (a fixture case's
seeds and plans), `copy_reference_seeds`, `run_pipeline` / `close_period` (what the daily and
close jobs run, in process), `query`, `FIXTURES`.

Shared built warehouses (session fixtures, built once per pytest worker that uses them):
- `generated_warehouse`: 20,000 generated events (`generated_events`) on the repository's seeds,
  the daily pipeline run once at GENERATED_AS_OF.
- `malformed_warehouse`: tests/fixtures/malformed (every quarantine reason, duplicates), the
  daily pipeline run once at MALFORMED_AS_OF.
- `worked_example_warehouse`: PRODUCT.md's worked example ($130.00), with a draft of its plan in
  plans/drafts/ that the pipeline simulates; the daily pipeline run once (clock: now).
Each is a `Built(warehouse, result)`. Read it as it is; never write to it. A test that runs the
pipeline again, lands files or changes a table takes a private copy first (the DuckDB file and
the data folder, a fraction of a second):

    def test_relanding_changes_nothing(malformed_warehouse, tmp_path):
        warehouse = copy_warehouse(malformed_warehouse.warehouse, tmp_path)

A module using a shared warehouse carries its `xdist_group` mark (GENERATED_GROUP,
MALFORMED_GROUP, WORKED_EXAMPLE_GROUP), so that under `make test` (three workers) every user of a warehouse runs on the
worker that built it. Other modules are kept whole on one worker (their module fixtures are built
once); `slow` modules are handed out first.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import pytest

from dagster_billing.paths import DBT_PROJECT_DIR, SEEDS_DIR
from dagster_billing.pricing.inputs import ACCOUNT_DATA_SEEDS

# `--cpu-usage`: CPU by test module, the processes each starts included (tests/cpu_usage.py).
pytest_plugins = ["tests.cpu_usage"]

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_FILES = (
    "accounts.csv",
    "subscriptions.csv",
    "meters.csv",
    "currencies.csv",
    "issuers.csv",
    "tax_rates.csv",
)
GENERATED_EVENTS = 20_000
GENERATED_AS_OF = "2026-03-10T00:00:00"
GENERATED_GROUP = "generated_warehouse"
MALFORMED_AS_OF = "2026-03-10T00:00:00"
MALFORMED_GROUP = "malformed_warehouse"
WORKED_EXAMPLE = FIXTURES / "worked_example"
WORKED_EXAMPLE_GROUP = "worked_example_warehouse"
# The worked example's plan as a draft of version 2 (tests/test_simulation.py changes its prices).
WORKED_EXAMPLE_DRAFT = (
    (WORKED_EXAMPLE / "plans" / "worked_example.yaml")
    .read_text()
    .replace("version: 1", "version: 2")
)
# The costliest modules of a `make test` run (docs/testing.md), handed out first and longest
# first, so that neither worker is left with a long module at the end while the other is idle.
HEAVIEST_FIRST = (
    "tests/test_spark_parity.py",
    "tests/test_sync.py",
    "tests/test_bench.py",
    "tests/test_pipeline.py",
    "tests/test_demo.py",
    "tests/test_receivables_lifecycle.py",
    "tests/test_lifecycle.py",
    "tests/test_analytics.py",
    "tests/test_landing_sensor.py",
)
# What the manifest is parsed from: newer than manifest.json means it is stale.
_MANIFEST_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests", "seeds")


def _import_anyio_now() -> None:
    """anyio imports its modules on first use, and pytest rewrites them as they are imported
    (anyio is a pytest plugin), with ast.parse. On a server thread (a portal test's first file
    response) that parse can race another thread's: CPython 3.11.7 then raises a spurious
    "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905, fixed in
    3.11.8). Import them all here, in the worker's main thread, before any server starts."""
    import anyio

    for name in dir(anyio):
        getattr(anyio, name)


_import_anyio_now()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's --dist loadgroup: a test without an xdist_group runs with the rest of its
    module (as --dist loadfile would); and slow modules come first, the costliest first
    (HEAVIEST_FIRST), so the workers are not left with one long module each at the end.
    Modules stay in one piece (module fixtures)."""
    slow_modules = set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(module))
        if item.get_closest_marker("slow") is not None:
            slow_modules.add(module)

    def order(item: pytest.Item) -> tuple[bool, int]:
        module = item.nodeid.split("::")[0]
        heavy = HEAVIEST_FIRST.index(module) if module in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
        return module not in slow_modules, heavy

    items.sort(key=order)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """xdist tells a test's group to its scheduler by appending `@group` to the node id; with
    pytest 9.2 that append is silently lost (pytest-dev/pytest-xdist#1386) and every shared
    warehouse would be built on both workers. Fail instead."""
    grouping = getattr(session.config.option, "loadgroup", False)
    if grouping and session.items and "@" not in session.items[0].nodeid:
        raise pytest.UsageError(
            "--dist loadgroup is not grouping tests (pytest-dev/pytest-xdist#1386): "
            "keep pytest < 9.2 (pyproject.toml) until pytest-xdist handles pytest's node ids"
        )


def _manifest_is_fresh(manifest: Path) -> bool:
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    paths = [DBT_PROJECT_DIR / name for name in _MANIFEST_INPUTS] + [SEEDS_DIR]
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        if any(file.stat().st_mtime > built for file in files if file.is_file()):
            return False
    return True


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dagster-dbt needs manifest.json at import; outside `dagster dev` nothing builds it.
    `make test` parses before pytest starts; run on its own, the first worker parses (under
    dagster-dbt's file lock) and the other finds it fresh.

    dbt's artifacts of the session (one target folder per invocation, partial-parse states) go
    to a temporary folder, not dbt_project/target (DBT_TARGET_PATH)."""
    os.environ.setdefault("BILLING_DATA_DIR", str(tmp_path_factory.mktemp("parse-data")))
    # `make` exports the developer's DAGSTER_HOME; tests that need an instance make their own.
    os.environ.pop("DAGSTER_HOME", None)
    # dagster-dbt's preparer looks for `dbt` on PATH: use the one beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    from dagster_billing.defs.dbt.project import billing_project

    if not _manifest_is_fresh(billing_project.manifest_path):
        billing_project.preparer.prepare(billing_project)
    os.environ["DBT_TARGET_PATH"] = str(tmp_path_factory.mktemp("dbt-target"))
    # No debug log file per dbt invocation (every SQL statement, about 1 CPU-s per pipeline run):
    # a failing test shows dbt's errors from its standard output.
    os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")
    # Nor manifest.json and run_results.json (nearly 1 CPU-s per invocation): a test that reads
    # run_results.json asks for it (`--write-json`); the partial-parse state is still written.
    os.environ.setdefault("DBT_WRITE_JSON", "false")
    return billing_project.manifest_path


@pytest.fixture(scope="session", autouse=True)
def dbt_server(dbt_manifest, tmp_path_factory: pytest.TempPathFactory):
    """One dbt fork server per worker (lib/dbt_server.py): each dbt invocation of the session
    forks an interpreter that has dbt imported instead of importing it again (about 3 s of CPU
    per invocation). `BILLING_TEST_DBT_SERVER=0` runs every invocation in its own process."""
    from dagster_billing.lib.dbt_server import SERVER_ENV, start_server

    if os.environ.get("BILLING_TEST_DBT_SERVER") == "0":
        os.environ.pop(SERVER_ENV, None)
        yield None
        return
    socket_path = tmp_path_factory.mktemp("dbt-server") / "dbt.sock"
    server = start_server(socket_path)
    # Until it listens, billing-dbt runs dbt in its own process.
    os.environ[SERVER_ENV] = str(socket_path)
    yield socket_path
    os.environ.pop(SERVER_ENV, None)
    server.terminate()
    server.wait(timeout=60)


def make_warehouse(root: Path, *, plans_dir: Path | None = None, seeds_dir: Path | None = None):
    from dagster_billing.defs.resources import BillingWarehouse

    kwargs = {"data_dir": str(root / "data")}
    if plans_dir is not None:
        kwargs["plans_dir"] = str(plans_dir)
    if seeds_dir is not None:
        kwargs["seeds_dir"] = str(seeds_dir)
    return BillingWarehouse(**kwargs)


def copy_warehouse(source, root: Path):
    """A private copy of a built warehouse (its DuckDB file, landing files and exports) under
    `root`, with the same plans and seeds: for a test that changes what it reads."""
    shutil.copytree(source.root, root / "data")
    return make_warehouse(root, plans_dir=Path(source.plans_dir), seeds_dir=Path(source.seeds_dir))


def copy_reference_seeds(target: Path, **overrides: str) -> Path:
    """A seeds directory with the repository's reference CSVs, some replaced by given text."""
    target.mkdir(parents=True, exist_ok=True)
    for name in REFERENCE_FILES:
        if name in overrides:
            (target / name).write_text(overrides[name])
        else:
            shutil.copy(SEEDS_DIR / name, target / name)
    # Lifecycle reference data that names accounts: empty (header only) unless overridden.
    for name in ACCOUNT_DATA_SEEDS:
        header = (SEEDS_DIR / name).read_text().splitlines()[0] + "\n"
        (target / name).write_text(overrides.get(name, header))
    return target


def case_warehouse(root: Path, case: Path):
    """A warehouse for a fixture case: its CSVs over the repository's reference seeds, its plans."""
    from dagster_billing.pricing.plans import compile_plans

    seeds = copy_reference_seeds(
        root / "seeds", **{path.name: path.read_text() for path in case.glob("*.csv")}
    )
    compile_plans(case / "plans", seeds)
    return make_warehouse(root, plans_dir=case / "plans", seeds_dir=seeds)


def _materialize(warehouse, job_name: str, partition_key: str, as_of: str | None, raise_on_error):
    """What job `job_name` runs, in process, without the assets that talk to the outside
    (reverse-ETL pushes, webhook delivery: their tests materialize them on their own)."""
    from dagster_billing.definitions import in_process_job_selection, pipeline_assets_and_checks
    from dagster_billing.defs.dbt.assets import AS_OF_TAG
    from dagster_billing.defs.resources import dbt_resource

    return dg.materialize(
        pipeline_assets_and_checks(),
        selection=in_process_job_selection(job_name),
        partition_key=partition_key,
        tags={AS_OF_TAG: as_of} if as_of else None,
        resources={"warehouse": warehouse, "dbt": dbt_resource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def run_pipeline(
    warehouse, *, as_of: str | None = None, day: str | None = None, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize what the billing_pipeline job does, in process, at the clock `as_of`
    ('%Y-%m-%dT%H:%M:%S', UTC; default now) for the day partition `day` ('2026-01-31'; default
    the day of `as_of`): land, rate, recalculate drafts, export."""
    day = day or (as_of or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))[:10]
    return _materialize(warehouse, "billing_pipeline", day, as_of, raise_on_error)


def close_period(
    warehouse, period: str, *, as_of: str, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize what the close_billing_period job does for `period` ('2026-01-01')."""
    return _materialize(warehouse, "close_billing_period", period, as_of, raise_on_error)


def query(warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()


def query_raw(warehouse, sql: str, params: list | None = None) -> list[tuple]:
    """The committed raw layer (Parquet) as raw.<table>, without opening the warehouse: what a
    landing wrote, with or without a dbt run after it."""
    with warehouse.raw_store.connect() as connection:
        return connection.execute(sql, params or []).fetchall()


class Built(NamedTuple):
    """A shared warehouse and the result of the run that built it."""

    warehouse: object
    result: dg.ExecuteInProcessResult


class Generated(NamedTuple):
    landing: Path
    summary: object  # dagster_billing.datagen's summary of what it wrote


@pytest.fixture(scope="session")
def generated_events(tmp_path_factory) -> Generated:
    """GENERATED_EVENTS events over the repository's accounts and meters (seed 11), with
    duplicates, conflicting duplicates, late and malformed rows, as landing files."""
    from dagster_billing.datagen import generate_events

    landing = tmp_path_factory.mktemp("generated") / "landing"
    summary = generate_events(
        landing,
        events=GENERATED_EVENTS,
        seed=11,
        accounts_csv=SEEDS_DIR / "accounts.csv",
        meters_csv=SEEDS_DIR / "meters.csv",
    )
    return Generated(landing, summary)


@pytest.fixture(scope="session")
def generated_warehouse(generated_events, tmp_path_factory) -> Built:
    """`generated_events` through the daily pipeline once, at GENERATED_AS_OF. Read only."""
    warehouse = make_warehouse(tmp_path_factory.mktemp("generated-warehouse"))
    shutil.copytree(generated_events.landing, warehouse.landing_dir)
    return Built(warehouse, run_pipeline(warehouse, as_of=GENERATED_AS_OF))


@pytest.fixture(scope="session")
def malformed_warehouse(tmp_path_factory) -> Built:
    """tests/fixtures/malformed through the daily pipeline once, at MALFORMED_AS_OF. Read only."""
    warehouse = make_warehouse(tmp_path_factory.mktemp("malformed-warehouse"))
    shutil.copytree(FIXTURES / "malformed", warehouse.landing_dir)
    return Built(warehouse, run_pipeline(warehouse, as_of=MALFORMED_AS_OF))


@pytest.fixture(scope="session")
def worked_example_warehouse(tmp_path_factory) -> Built:
    """The worked example through the daily pipeline, with a draft in plans/drafts/ pricing API
    calls at 0.003 (drafts change no invoice: the pipeline only simulates them). Read only."""
    root = tmp_path_factory.mktemp("worked-example")
    plans = root / "plans"
    shutil.copytree(WORKED_EXAMPLE / "plans", plans)
    (plans / "drafts").mkdir()
    (plans / "drafts" / "worked_example.yaml").write_text(
        WORKED_EXAMPLE_DRAFT.replace("unit_price: 0.002", "unit_price: 0.003")
    )
    seeds = copy_reference_seeds(
        root / "seeds",
        **{
            name: (WORKED_EXAMPLE / name).read_text()
            for name in ("meters.csv", "accounts.csv", "subscriptions.csv")
        },
    )
    warehouse = make_warehouse(root, plans_dir=plans, seeds_dir=seeds)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(WORKED_EXAMPLE / "usage.ndjson", warehouse.landing_dir)
    return Built(warehouse, run_pipeline(warehouse))
