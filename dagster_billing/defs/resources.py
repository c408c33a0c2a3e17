import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from packaging.version import Version
from pydantic import Field

from dagster_billing.defs.dbt.project import DBT_EXECUTABLE, billing_project
from dagster_billing.defs.ingest.raw_store import RawStore, raw_store
from dagster_billing.lib.duckdb_config import duckdb_config
from dagster_billing.lib.environ import scoped_environ
from dagster_billing.lib.spark_tables import publish_spark_tables
from dagster_billing.lib.warehouse_lock import retry_while_locked
from dagster_billing.paths import DBT_PROJECT_DIR, PLANS_DIR, SEEDS_DIR

# The engines the dbt project runs on (dbt targets of dbt_project/profiles.yml).
ENGINES = ("duckdb", "spark")


class BillingWarehouse(dg.ConfigurableResource):
    """Where the pipeline keeps its data (landing files, the raw Parquet layer, the warehouse,
    exports), the reference data it prices with (plans/ and seeds/ of this repository unless
    configured), and the engine dbt builds the models on: the one place that knows the engine.

    dbt learns the same locations (and the engine, as its target) from dbt_environment(), so
    Python and dbt always agree. Python reads and writes through connect(), a DuckDB connection
    to warehouse.duckdb whatever the engine: on DuckDB that file is the warehouse; on Spark it
    holds the Python-owned state (sync ledger, webhook deliveries) and views over the Parquet
    files of the Spark tables (refreshed after every dbt invocation), so the same SQL serves
    exports, PDFs, checks, the API snapshot and the syncs. DuckDB allows one writer: every asset
    that touches it runs in the `duckdb` concurrency pool (limit 1 in dagster.yaml).
    """

    data_dir: str = Field(description="Root of landing/, exports/ and warehouse.duckdb.")
    plans_dir: str = Field(default=str(PLANS_DIR), description="Plan YAML files.")
    seeds_dir: str = Field(
        default=str(SEEDS_DIR),
        description="Reference CSVs (accounts, meters, ...) and compiled price tables for dbt seed.",
    )
    engine: str | None = Field(
        default=None,
        description=(
            "duckdb or spark: the dbt target the models are built on. Unset: the environment "
            "variable BILLING_ENGINE, else duckdb."
        ),
    )

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def duckdb_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def raw_store(self) -> RawStore:
        """The raw layer both engines read: Parquet files under raw/."""
        return raw_store(self.root)

    @property
    def spark_dir(self) -> Path:
        """Spark's warehouse (spark/warehouse/<schema>.db/<table>) and metastore."""
        return self.root / "spark"

    @property
    def resolved_engine(self) -> str:
        engine = self.engine or os.environ.get("BILLING_ENGINE") or "duckdb"
        if engine not in ENGINES:
            raise ValueError(f"BILLING_ENGINE must be one of {', '.join(ENGINES)}, not {engine!r}")
        return engine

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @contextmanager
    def dbt_environment(self) -> Iterator[None]:
        """Point the dbt profile (BILLING_DATA_DIR, and BILLING_ENGINE, which picks the target)
        and seed path (BILLING_SEEDS_DIR) at this resource's locations for the duration of a dbt
        invocation. On Spark, the tables dbt built are then published to warehouse.duckdb."""
        engine = self.resolved_engine
        values = {
            "BILLING_DATA_DIR": str(self.root),
            "BILLING_SEEDS_DIR": _dbt_seed_path(Path(self.seeds_dir)),
            "BILLING_ENGINE": engine,
        }
        with scoped_environ(values):
            yield
        if engine == "spark":
            with self.connect() as connection:
                publish_spark_tables(connection, self.spark_dir / "warehouse", self.raw_store)

    @property
    def analytics_dir(self) -> Path:
        return self.root / "analytics"

    @property
    def dbt_parse_state(self) -> Path:
        """dbt's partial-parse state (partial_parse.msgpack) for this warehouse's seeds and engine,
        shared by every warehouse with the same ones (copies, tests, simulations): see
        dbt_invocation_target()."""
        key = f"{Path(self.seeds_dir).resolve()}\0{self.resolved_engine}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return dbt_target_root() / "partial_parse" / f"{digest}.msgpack"

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse; a lock held by another process is waited for."""
        self.root.mkdir(parents=True, exist_ok=True)
        connection = retry_while_locked(
            lambda: duckdb.connect(
                str(self.duckdb_path), read_only=read_only, config=duckdb_config()
            ),
            self.duckdb_path,
            logger=dg.get_dagster_logger(),
        )
        try:
            yield connection
        finally:
            connection.close()

    def wait_until_writable(self) -> None:
        """Return once no other process holds the warehouse (before a dbt invocation, which
        would fail at once on a lock)."""
        with self.connect():
            pass


DUCKDB_POOL = "duckdb"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def dbt_target_root() -> Path:
    """dbt's target folder, where dagster-dbt puts each invocation's own folder
    (DBT_TARGET_PATH, else dbt_project/target)."""
    return DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


@contextmanager
def dbt_invocation_target(warehouse: BillingWarehouse, name: str) -> Iterator[Path]:
    """A fresh target folder for one dbt invocation against `warehouse` (named like dagster-dbt's
    own: `<name>-<random>`), holding the warehouse's partial-parse state; the state dbt leaves
    there is kept for the next invocation.

    dbt re-parses the whole project (3-4 s of CPU) when the profile or an env var read by
    dbt_project.yml (BILLING_SEEDS_DIR) differs from the parse that wrote the state. dagster-dbt
    always hands dbt target/partial_parse.msgpack, written by `make manifest`: a full parse on
    every invocation for any other seeds or engine. The state is kept per seeds and engine, not
    per warehouse: `billing-dbt` leaves the DuckDB file's path out of the profile's hash
    (lib/dbt_cli.py), so a new warehouse, or a copy, starts from another's parse. dbt still checks
    the state it is given (profile, env vars, vars, every file's checksum) and parses what changed.
    """
    target = dbt_target_root() / f"{name}-{uuid.uuid4().hex[:7]}"
    with shared_parse_state(warehouse, target):
        yield target
    prune_invocation_targets(dbt_target_root(), dbt_targets_keep())


# An invocation's folder: `<name>-<7 hex digits>` (dbt_invocation_target). Each holds dbt.log
# and the compiled and run SQL of its nodes: 0.4-2.7 MB.
INVOCATION_TARGET = re.compile(r"^.+-[0-9a-f]{7}$")
DEFAULT_DBT_TARGETS_KEEP = 20
INVOCATION_IDLE_SECONDS = 3600


def dbt_targets_keep() -> int:
    """BILLING_DBT_TARGETS_KEEP (default 20): how many dbt invocation folders are kept; 0 keeps
    every one."""
    value = os.environ.get("BILLING_DBT_TARGETS_KEEP")
    return int(value) if value else DEFAULT_DBT_TARGETS_KEEP


def prune_invocation_targets(
    root: Path, keep: int, *, idle_seconds: float = INVOCATION_IDLE_SECONDS
) -> list[Path]:
    """Delete the dbt invocation folders under `root` beyond the newest `keep` (by when dbt last
    wrote to them), leaving any written to in the last `idle_seconds` (an invocation still
    running); what was deleted. Without it a deployment keeps every invocation's folder, one or
    two a run: gigabytes a week under the landing sensor."""
    if keep <= 0 or not root.is_dir():
        return []

    def last_written(folder: Path) -> float:
        log = folder / "dbt.log"
        return max(folder.stat().st_mtime, log.stat().st_mtime if log.exists() else 0.0)

    folders = []
    for folder in root.iterdir():
        if folder.is_dir() and INVOCATION_TARGET.match(folder.name):
            try:
                folders.append((last_written(folder), folder))
            except FileNotFoundError:  # deleted meanwhile by another process's pruning
                continue
    folders.sort(reverse=True)
    cutoff = time.time() - idle_seconds
    doomed = [folder for written, folder in folders[keep:] if written < cutoff]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


@contextmanager
def shared_parse_state(warehouse: BillingWarehouse, target: Path) -> Iterator[None]:
    """dbt's saved parse for `warehouse`'s seeds and engine in the target folder `target` (unless
    it has one), and the state dbt leaves there kept for the next invocation
    (dbt_invocation_target)."""
    state = warehouse.dbt_parse_state
    if state.exists() and not (target / PARTIAL_PARSE_FILE).exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, target / PARTIAL_PARSE_FILE)
    yield
    written = target / PARTIAL_PARSE_FILE
    if written.exists():
        # Moved, not copied: the state is 2 MB and each invocation's folder is kept a while.
        state.parent.mkdir(parents=True, exist_ok=True)
        staged = state.with_name(f"{state.name}.{uuid.uuid4().hex[:7]}")
        shutil.move(written, staged)
        staged.replace(state)


def _dbt_seed_path(seeds_dir: Path) -> str:
    """The seed path to give dbt, relative to the dbt project.

    dbt writes a copy of each seed's SQL to target/run/<package>/<seed path>; with an absolute seed
    path that write lands on the seed CSV itself. Reference data outside the repository is
    therefore copied under dbt_project/.reference/ (git-ignored) and passed relatively.
    """
    seeds_dir = seeds_dir.resolve()
    if seeds_dir == SEEDS_DIR.resolve():
        return os.path.relpath(seeds_dir, DBT_PROJECT_DIR)
    digest = hashlib.sha256(str(seeds_dir).encode()).hexdigest()[:16]
    staged = DBT_PROJECT_DIR / ".reference" / digest
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(seeds_dir, staged, ignore=shutil.ignore_patterns("*.yaml", "*.yml"))
    return os.path.relpath(staged, DBT_PROJECT_DIR)


class BillingDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource, without two fixed costs per invocation that buy us nothing:
    a `dbt --version` subprocess and an in-process dbt adapter.

    DbtCliResource asks the executable for its version before every `dbt build` (to tell dbt-core
    from the Fusion engine): a whole dbt start-up plus a PyPI "update available" check, 4.5 s of
    wall time here, three times per run of the daily job. Our executable is this environment's
    dbt-core (`DBT_EXECUTABLE`), so its version is the installed package's.
    """

    @property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        """No dbt adapter in the Dagster process.

        Before every invocation DbtCliResource builds one in process (profile, project, and a
        Jinja parse of all of dbt's macros: 2-4 s of CPU each time, three times per daily run).
        It serves only DbtEventIterator.fetch_column_metadata() / fetch_row_counts(), which no
        asset here calls; with None, dagster-dbt runs dbt exactly the same way."""
        return None


def dbt_resource() -> DbtCliResource:
    return BillingDbtCliResource(project_dir=billing_project, dbt_executable=DBT_EXECUTABLE)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": BillingWarehouse(data_dir=dg.EnvVar("BILLING_DATA_DIR")),
            "dbt": dbt_resource(),
        }
    )
