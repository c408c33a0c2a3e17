"""The same landed events billed on DuckDB and on Spark (dbt-spark's session method, pyspark in
local mode) give the same invoices, lines, totals, ledger and outcome counts, exact to the last
decimal place, and the same CSV exports byte for byte.

Both engines read the one raw Parquet layer (landed once, then copied). Per engine: a dbt build
on the fixture's January (drafts, with the rating unit tests 10^12 x 0.0000001 and JPY running
on Spark too, and the invariant tests), a close that books the ledger, then the Python side of
the pipeline as Dagster runs it (CSV exports, finance checks), which on Spark reads the Spark
tables' Parquet files. `make spark-parity` does the same with the demo's 1M events through the
Dagster jobs (bench/parity.py). Skipped, saying so, when no Java runtime is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import dagster as dg
import pytest

from bench.parity import answer_differences, warehouse_answer
from dagster_billing.lib.dbt_args import dbt_build_args, finalization_vars, run_environment
from dagster_billing.lib.dbt_args import parse_dbt_timestamp as at
from dagster_billing.lib.environ import scoped_environ
from tests.conftest import FIXTURES, case_warehouse

CASE = FIXTURES / "reconciliation"
DRAFT_AS_OF = "2026-02-01T12:00:00"
CLOSE_AS_OF = "2026-02-04T01:00:00"
# On Spark, the data tests that state an invariant (tests/*.sql) and dbt's unit tests (the rating
# edge cases: 10^12 x 0.0000001, JPY, ...); the generic tests (unique, not_null, ...) run on
# DuckDB in every pipeline test and cost ~0.5 s each on Spark.
SPARK_BUILD_ARGS = ["build", "--exclude", "test_type:generic"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    # ~3 minutes on an idle 2-core machine (two JVM starts per engine run); far more when shared.
    pytest.mark.timeout(2400),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (17+)"),
]


def _dbt(warehouse, target_path, *args: str, as_of: str, **run_vars: str) -> None:
    from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
    from dagster_billing.paths import DBT_PROJECT_DIR

    # Fixture data: one shuffle partition per stage is plenty.
    environment = run_environment({"as_of": as_of, **run_vars}) | {
        "BILLING_SPARK_SHUFFLE_PARTITIONS": "1"
    }
    with warehouse.dbt_environment(), scoped_environ(environment):
        completed = subprocess.run(
            [DBT_EXECUTABLE, *args, "--target-path", str(target_path)],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
    output = completed.stdout
    assert completed.returncode == 0, (
        "\n".join(
            line
            for line in output.splitlines()
            if "ERROR" in line or "FAIL" in line or "Error" in line
        )[-6000:]
        or output[-6000:]
    )


def _python_side(warehouse) -> list[dg.AssetCheckResult]:
    """The assets and checks that read the warehouse with DuckDB SQL, as a run executes them: the
    CSV exports materialized, then the finance checks (called directly: `materialize` leaves out
    checks on assets outside the run, and their assets are dbt models)."""
    from dagster_billing.defs.invoicing.checks import lines_sum_to_totals, nothing_lost
    from dagster_billing.defs.invoicing.exports import invoice_csv_exports, usage_csv_exports

    exported = dg.materialize(
        [invoice_csv_exports, usage_csv_exports],
        resources={"warehouse": warehouse},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert exported.success
    return [check(warehouse=warehouse) for check in (nothing_lost, lines_sum_to_totals)]


def _bill(warehouse, target_path, build_args: list[str]) -> tuple[list[dg.AssetCheckResult], dict]:
    """Draft January, close it (the ledger books the drafts), run the Python side. Returns the
    finance checks' results and the status of every node of the draft build."""
    _dbt(warehouse, target_path, *build_args, as_of=DRAFT_AS_OF)
    draft_build = json.loads((target_path / "run_results.json").read_text())["results"]
    close = finalization_vars(at("2026-02-01T00:00:00"))
    _dbt(
        warehouse,
        target_path,
        "build",
        "--select",
        "tag:partition_billing_period+",
        "--exclude",
        "test_type:generic",
        as_of=CLOSE_AS_OF,
        **close,
    )
    return _python_side(warehouse), {node["unique_id"]: node["status"] for node in draft_build}


@pytest.fixture(scope="module")
def billed(tmp_path_factory):
    from dagster_billing.defs.resources import BillingWarehouse

    root = tmp_path_factory.mktemp("parity")
    case = case_warehouse(root / "duckdb", CASE)
    # New resources, not model_copy: Dagster builds a resource from its constructor's config.
    duckdb_warehouse, spark_warehouse = (
        BillingWarehouse(
            data_dir=data_dir, plans_dir=case.plans_dir, seeds_dir=case.seeds_dir, engine=engine
        )
        for data_dir, engine in (
            (case.data_dir, "duckdb"),
            (str(root / "spark" / "data"), "spark"),
        )
    )
    from dagster_billing.defs.ingest.landing import land_files

    duckdb_warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage.ndjson", duckdb_warehouse.landing_dir)
    land_files(
        duckdb_warehouse.raw_store,
        sorted(duckdb_warehouse.landing_dir.iterdir()),
        landing_dir=duckdb_warehouse.landing_dir,
    )
    shutil.copytree(duckdb_warehouse.raw_store.root, spark_warehouse.raw_store.root)

    billed = {
        "duckdb": _bill(duckdb_warehouse, root / "duckdb" / "target", dbt_build_args()),
        "spark": _bill(spark_warehouse, root / "spark" / "target", SPARK_BUILD_ARGS),
    }
    return {"duckdb": duckdb_warehouse, "spark": spark_warehouse}, billed


def test_invoices_lines_ledger_and_outcomes_are_identical_on_spark(billed):
    warehouses, _ = billed
    reference = warehouse_answer(warehouses["duckdb"])
    candidate = warehouse_answer(warehouses["spark"])

    assert reference["ledger"], "the close booked nothing: the comparison would prove little"
    assert answer_differences(reference, candidate) == []
    [invoice] = candidate["invoices"]
    # status, total after the credit (tests/test_invoice_reconciliation.py: 98.74 - 9.87 - 50.00)
    assert (invoice[2], invoice[15]) == ("final", "38.8700")


def test_exports_are_byte_identical_and_every_check_passes_on_spark(billed):
    warehouses, results = billed

    def exports(warehouse) -> dict[str, bytes]:
        root = warehouse.exports_dir
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}

    assert exports(warehouses["spark"]) == exports(warehouses["duckdb"])
    assert exports(warehouses["spark"])
    for checks, _ in results.values():
        assert len(checks) == 2 and all(check.passed for check in checks), checks


def test_rating_edge_cases_and_invariants_hold_on_spark(billed):
    """dbt's unit tests ran on Spark before their models: 10^12 units x 0.0000001 = 100000
    exactly (per_unit_edges), JPY rounds to whole yen (lines_round_once_and_adjust_in_order),
    and every other edge case; so did the invariant tests (totals = lines, nothing lost, lines
    rounded, ...). The builds also passed the on-run-start check: ANSI mode on, decimal
    precision loss off (macros/spark.sql)."""
    _, billed_by_engine = billed
    _, statuses = billed_by_engine["spark"]
    unit_tests = {
        node: status for node, status in statuses.items() if node.startswith("unit_test.")
    }
    singular = {node: status for node, status in statuses.items() if node.startswith("test.")}

    assert unit_tests["unit_test.billing.int_usage_rated_tiers.per_unit_edges"] == "pass"
    assert (
        unit_tests[
            "unit_test.billing.int_invoice_charge_lines.lines_round_once_and_adjust_in_order"
        ]
        == "pass"
    )
    assert len(unit_tests) >= 17 and set(unit_tests.values()) == {"pass"}
    assert "test.billing.assert_invoice_totals_equal_lines" in singular
    assert set(singular.values()) == {"pass"}
