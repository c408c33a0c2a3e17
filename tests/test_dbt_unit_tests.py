"""dbt's unit tests (the edge cases of every price model, aggregation, invoice line, credit draw:
the models' _*__unit_tests.yml) run here, once. The pipeline's own `dbt build` leaves them out,
as dbt advises for production runs (dagster_billing.lib.dbt_args)."""

from __future__ import annotations

import json
import subprocess

from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
from dagster_billing.paths import DBT_PROJECT_DIR
from tests.conftest import make_warehouse


def _dbt(warehouse, target, *args: str) -> subprocess.CompletedProcess:
    """dbt on `warehouse`, from the saved parse of its seeds and engine when there is one (as a
    Dagster run starts it), its artifacts in `target`."""
    from dagster_billing.defs.resources import shared_parse_state

    with warehouse.dbt_environment(), shared_parse_state(warehouse, target):
        return subprocess.run(
            [DBT_EXECUTABLE, *args, "--write-json", "--target-path", str(target)],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
            check=False,
        )


def test_every_dbt_unit_test_passes(tmp_path):
    warehouse = make_warehouse(tmp_path)
    warehouse.root.mkdir(parents=True)
    target = tmp_path / "target"

    # One dbt invocation. Unit tests read their inputs' column types from the warehouse: `build`
    # builds every model empty (unit tests ignore --empty; the raw sources are typed empty views
    # until something lands: macros/raw_sources.sql) and runs each model's unit tests before it;
    # data tests on empty tables would prove nothing and are left out.
    tested = _dbt(warehouse, target, "build", "--empty", "--exclude-resource-type", "test")

    assert tested.returncode == 0, tested.stdout[-6000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 18, [r["unique_id"] for r in unit_tests]
    assert {r["status"] for r in unit_tests} == {"pass"}
