"""The same landed events billed on DuckDB and on Spark (dbt-spark's session method, pyspark in
local mode) give the same invoices, lines, totals, ledger and outcome counts, exact to the last
decimal place, and the same CSV exports byte for byte.

Both engines read the one raw Parquet layer (landed once, then copied). Per engine, in one dbt
process (tests/dbt_invocations.py: Spark's JVM and session start once): a dbt build of every
model, seed and invariant test on the fixture's January (drafts), then a close that books the
ledger; then the Python side of the pipeline as Dagster runs it (CSV exports, finance checks),
which on Spark reads the Spark tables' Parquet files. On Spark, between draft and close, the
same process runs the dbt unit tests of SPARK_UNIT_TESTS (the money edge cases: 10^12 x
0.0000001, JPY, ...). `make spark-parity` does the same with the demo's 1M events through the
Dagster jobs (bench/parity.py).
Skipped, saying so, when no Java runtime is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import dagster as dg
import pytest

from bench.parity import answer_differences, warehouse_answer
from dagster_billing.lib.dbt_args import finalization_vars, run_environment
from dagster_billing.lib.dbt_args import parse_dbt_timestamp as at
from dagster_billing.paths import REPO_ROOT
from tests.conftest import FIXTURES, case_warehouse

CASE = FIXTURES / "reconciliation"
DRAFT_AS_OF = "2026-02-01T12:00:00"
CLOSE_AS_OF = "2026-02-04T01:00:00"
# Both engines build every model and seed and the data tests that state an invariant
# (tests/*.sql: totals = lines, nothing lost, lines rounded, ...). Generic tests (unique,
# not_null, ...) run on DuckDB in every pipeline test and cost ~0.5 s each on Spark.
BUILD_SELECTION = [
    "--select",
    "resource_type:seed",
    "resource_type:model",
    "resource_type:test",
]
EXCLUDE_GENERIC = ["--exclude", "test_type:generic"]
# A build also runs the unit tests of the models it builds: they run apart (below).
NO_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]
# dbt's unit tests run on Spark (all of them run on DuckDB in tests/test_dbt_unit_tests.py) where
# Spark's SQL differs from DuckDB's for money and time: exact decimal products and rounding,
# divide_decimal's exact steps, ceilings, date arithmetic, the credit draws' CTE steps. The others
# (each 5-90 s on Spark: unit tests of big models are slow to plan) add no engine coverage: their
# models run on Spark in the build above and their output is compared with DuckDB's.
SPARK_UNIT_TESTS = (
    "per_unit_edges",  # 10^12 units x 0.0000001 = 100000 exactly
    "lines_round_once_and_adjust_in_order",  # JPY: whole yen; every line rounded once, half-up
    "commitment_lines_follow_the_usage_lines_in_order",  # commitment discount and true-up
    "percentage_coupons_round_once_and_cap",  # a percentage of a subtotal, rounded once
    "seat_charges_round_seat_days_up_at_5_decimals",  # a ceiling at 5 decimal places
    "daily_partials",  # time-weighted sums: divide_decimal (div and %) on Spark
    "anniversary_periods_start_on_the_anchor_day",  # dateadd / date_trunc on Spark
    "an_exhausted_instrument_does_not_stop_the_ones_after_it",  # the draws' CTE steps
)
UNIT_TESTS_ON_SPARK = ["test", "--select", *(f"unit_test:{name}" for name in SPARK_UNIT_TESTS)]
# The close: the ledger books the drafts, the marts downstream read it.
CLOSE_SELECTION = ["--select", "tag:partition_billing_period+", *EXCLUDE_GENERIC, *NO_UNIT_TESTS]

# Spark sized for fixture data in one process (docs/spark.md, "Where the parity test's CPU
# goes"): one shuffle partition per stage, the in-memory catalog (every invocation runs in the
# one process; the Python side reads the tables' Parquet files), no code generation.
FIXTURE_SPARK = {
    "BILLING_SPARK_SHUFFLE_PARTITIONS": "1",
    "BILLING_SPARK_CATALOG": "in-memory",
    "BILLING_SPARK_CODEGEN": "false",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    # Minutes, most of them Spark's fixed cost per model (measured times: docs/spark.md); far
    # more when the machine is shared.
    pytest.mark.timeout(2400),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (17+)"),
]


def _dbt(warehouse, root, invocations: list[tuple[str, list[str], dict[str, str]]]) -> None:
    """dbt invocations (name, arguments, run vars) on `warehouse`, in one process; each one's
    run_results.json is kept as root/<name>.json."""
    target_path = root / "target"
    plan = [
        {
            "args": [*args, "--write-json", "--target-path", str(target_path)],
            "env": run_environment(run_vars) | FIXTURE_SPARK,
            "run_results": str(root / f"{name}.json"),
        }
        for name, args, run_vars in invocations
    ]
    plan_path = root / "dbt_plan.json"
    plan_path.write_text(json.dumps(plan))
    with warehouse.dbt_environment():
        completed = subprocess.run(
            [sys.executable, "-m", "tests.dbt_invocations", str(plan_path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    output = completed.stdout + completed.stderr
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


def _bill(warehouse, root, *, unit_tests: list[str] | None = None):
    """Draft January (and run `unit_tests`, a `dbt test` command, on those tables), close it
    (the ledger books the drafts), run the Python side. Returns the finance checks' results and
    the status of every node of the draft build and of the unit tests."""
    draft = ("draft", ["build", *BUILD_SELECTION, *EXCLUDE_GENERIC, *NO_UNIT_TESTS])
    close = ("close", ["build", *CLOSE_SELECTION])
    invocations = [draft, *([("unit_tests", unit_tests)] if unit_tests else []), close]
    run_vars = {
        "draft": {"as_of": DRAFT_AS_OF},
        "unit_tests": {"as_of": DRAFT_AS_OF},
        "close": {"as_of": CLOSE_AS_OF, **finalization_vars(at("2026-02-01T00:00:00"))},
    }
    _dbt(warehouse, root, [(name, args, run_vars[name]) for name, args in invocations])
    statuses = {
        node["unique_id"]: node["status"]
        for name, _ in invocations
        if name != "close"
        for node in json.loads((root / f"{name}.json").read_text())["results"]
    }
    return _python_side(warehouse), statuses


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
        "duckdb": _bill(duckdb_warehouse, root / "duckdb"),
        "spark": _bill(spark_warehouse, root / "spark", unit_tests=UNIT_TESTS_ON_SPARK),
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


def test_every_model_and_the_money_edge_cases_run_on_spark(billed):
    """Every model and seed was built on Spark, and dbt's unit tests of SPARK_UNIT_TESTS ran on
    Spark before their models: 10^12 units x 0.0000001 = 100000 exactly (per_unit_edges), JPY
    rounds to whole yen (lines_round_once_and_adjust_in_order), ...; so did the invariant tests
    (totals = lines, nothing lost, lines rounded, ...). The builds also passed the on-run-start
    check: ANSI mode on, decimal precision loss off (macros/spark.sql)."""
    _, billed_by_engine = billed
    _, statuses = billed_by_engine["spark"]
    _, duckdb_statuses = billed_by_engine["duckdb"]

    def of_type(nodes: dict, prefix: str) -> dict:
        return {node: status for node, status in nodes.items() if node.startswith(prefix)}

    unit_tests = {
        node.rsplit(".", 1)[1]: status for node, status in of_type(statuses, "unit_test.").items()
    }
    assert unit_tests == dict.fromkeys(SPARK_UNIT_TESTS, "pass")
    for prefix in ("model.", "seed."):
        built = of_type(statuses, prefix)
        assert built.keys() == of_type(duckdb_statuses, prefix).keys()
        assert set(built.values()) == {"success"}
    assert len(of_type(statuses, "model.")) >= 60
    singular = of_type(statuses, "test.")
    assert "test.billing.assert_invoice_totals_equal_lines" in singular
    assert set(singular.values()) == {"pass"}


def test_a_draft_plan_is_simulated_alike_on_spark(billed, tmp_path):
    """Pricing simulation on a Spark warehouse rebuilds the rating models on the embedded engine
    over the Spark tables, which it only reads. Its report is the DuckDB warehouse's for the same
    draft (API calls at 0.05 instead of 0.01: the minimum commitment's true-up absorbs most of
    it), to the cent; DuckDB's simulation itself is tested in tests/test_simulation.py."""
    from dagster_billing.defs.resources import dbt_resource
    from dagster_billing.pricing.simulation import simulate

    warehouses, _ = billed
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    plan = (CASE / "plans" / "recon.yaml").read_text()
    assert "unit_price: 0.01\n" in plan
    (drafts / "recon.yaml").write_text(
        plan.replace("version: 1", "version: 2").replace("unit_price: 0.01\n", "unit_price: 0.05\n")
    )
    spark_tables = warehouses["spark"].spark_dir / "warehouse"

    def files(root) -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*.parquet")}

    spark_files = files(spark_tables)
    report = simulate(
        warehouse=warehouses["spark"],
        dbt=dbt_resource(),
        draft_dir=drafts,
        report_dir=tmp_path / "report",
        log=lambda _message: None,
    )

    amounts = {"current_amount": "98.74", "draft_amount": "102.03", "difference": "3.29"}
    assert report.invoices == [
        {
            "invoice_id": "inv-acct_recon-2026-01-01",
            "account_id": "acct_recon",
            "period_start": "2026-01-01",
            "currency": "USD",
            **amounts,
        }
    ]
    assert report.totals == [{"currency": "USD", "accounts": 1, **amounts, "accounts_changed": 1}]
    assert files(spark_tables) == spark_files
