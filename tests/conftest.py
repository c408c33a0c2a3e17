from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_billing.paths import SEEDS_DIR

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_FILES = ("accounts.csv", "subscriptions.csv", "meters.csv", "currencies.csv")


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
    return target


def run_pipeline(warehouse, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize every asset and check, in process, as the billing_pipeline job does (the
    reverse-ETL pushes, which need destination credentials, are left to tests/test_sync*.py)."""
    from dagster_billing.definitions import pipeline_assets_and_checks
    from dagster_billing.defs.resources import dbt_resource

    return dg.materialize(
        pipeline_assets_and_checks(),
        resources={"warehouse": warehouse, "dbt": dbt_resource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def query(warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()
