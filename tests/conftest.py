from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dagster_billing.paths import SEEDS_DIR
from dagster_billing.pricing.inputs import ACCOUNT_DATA_SEEDS

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_FILES = (
    "accounts.csv",
    "subscriptions.csv",
    "meters.csv",
    "currencies.csv",
    "issuers.csv",
    "tax_rates.csv",
)


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dagster-dbt needs manifest.json at import; outside `dagster dev` nothing builds it."""
    os.environ.setdefault("BILLING_DATA_DIR", str(tmp_path_factory.mktemp("parse-data")))
    # dagster-dbt's preparer looks for `dbt` on PATH: use the one beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    from dagster_billing.defs.dbt.project import billing_project

    billing_project.preparer.prepare(billing_project)
    return billing_project.manifest_path


def make_warehouse(root: Path, *, plans_dir: Path | None = None, seeds_dir: Path | None = None):
    from dagster_billing.defs.resources import BillingWarehouse

    kwargs = {"data_dir": str(root / "data")}
    if plans_dir is not None:
        kwargs["plans_dir"] = str(plans_dir)
    if seeds_dir is not None:
        kwargs["seeds_dir"] = str(seeds_dir)
    return BillingWarehouse(**kwargs)


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
    warehouse, *, as_of: str | None = None, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize what the billing_pipeline job does, in process, for the day of `as_of`
    ('%Y-%m-%dT%H:%M:%S', UTC; default now): land, rate, recalculate drafts, export."""
    day = (as_of or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))[:10]
    return _materialize(warehouse, "billing_pipeline", day, as_of, raise_on_error)


def close_period(
    warehouse, period: str, *, as_of: str, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize what the close_billing_period job does for `period` ('2026-01-01')."""
    return _materialize(warehouse, "close_billing_period", period, as_of, raise_on_error)


def query(warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()
