"""Plans: YAML -> validated models -> price tables, with clear errors for bad plans."""

from __future__ import annotations

import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_billing.cli import main
from dagster_billing.paths import PLANS_DIR, SEEDS_DIR
from dagster_billing.pricing.plans import PRICE_TABLES, PlanError, compile_plans, load_plan_file

VALID_PLAN = """
code: demo
version: 1
name: Demo
effective_from: 2026-01-01
currency: USD
charges:
  - id: api
    meter: api.requests
    model: graduated
    tiers:
      - {up_to: 1000, unit_price: 0.0009}
      - {up_to: null, unit_price: 0.0006, flat_fee: 5}
"""


def _seeds(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("meters.csv", "currencies.csv"):
        shutil.copy(SEEDS_DIR / name, seeds / name)
    return seeds


def _plans(tmp_path: Path, **files: str) -> Path:
    plans = tmp_path / "plans"
    plans.mkdir()
    for name, text in files.items():
        (plans / f"{name}.yaml").write_text(textwrap.dedent(text))
    return plans


def test_committed_price_seeds_are_compiled_from_committed_plans(tmp_path):
    seeds = _seeds(tmp_path)
    compile_plans(PLANS_DIR, seeds)
    for table in PRICE_TABLES:
        assert (seeds / f"{table}.csv").read_text() == (SEEDS_DIR / f"{table}.csv").read_text(), (
            f"seeds/{table}.csv is stale: run `billing plans compile`"
        )


def test_numbers_are_read_as_exact_decimals(tmp_path):
    plans = _plans(tmp_path, demo=VALID_PLAN)
    plan = load_plan_file(plans / "demo.yaml")
    assert plan.charges[0].tiers[0].unit_price == Decimal("0.0009")
    assert isinstance(plan.charges[0].tiers[0].unit_price, Decimal)


def test_tiers_compile_to_cumulative_bounds(tmp_path):
    compile_plans(_plans(tmp_path, demo=VALID_PLAN), seeds := _seeds(tmp_path))
    assert (seeds / "price_tiers.csv").read_text().splitlines() == [
        "plan_code,plan_version,charge_id,tier_number,lower_bound,upper_bound,unit_price,flat_fee",
        "demo,1,api,1,0,1000,0.0009,0",
        "demo,1,api,2,1000,,0.0006,5",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "{up_to: 1000, unit_price: 0.0009}",
                "{up_to: 2000, unit_price: 0.0009}\n      - {up_to: 1000, unit_price: 0.0008}",
            ),
            "charges[0]: Value error, tier up_to bounds must be positive and strictly ascending",
        ),
        (
            ("meter: api.requests", "meter: api.reqests"),
            "charges[0].meter: unknown meter 'api.reqests'",
        ),
        (("currency: USD", "currency: XYZ"), "currency: unknown currency 'XYZ'"),
        (
            ("unit_price: 0.0009", "unit_price: -0.0009"),
            "charges[0].tiers[0].unit_price: Input should be greater than or equal to 0",
        ),
        (("name: Demo\n", ""), "name: Field required"),
        (
            ("model: graduated", "model: tiered"),
            "charges[0].model: Input should be 'per_unit', 'graduated' or 'volume'",
        ),
        (
            ("{up_to: null, unit_price: 0.0006, flat_fee: 5}", "{up_to: 5000, unit_price: 0.0006}"),
            "the last tier must have up_to: null",
        ),
    ],
)
def test_invalid_plans_name_file_path_and_reason(tmp_path, change, message):
    old, new = change
    plans = _plans(tmp_path, demo=VALID_PLAN.replace(old, new, 1))
    with pytest.raises(PlanError) as error:
        compile_plans(plans, _seeds(tmp_path))
    assert str(plans / "demo.yaml") in str(error.value)
    assert message in str(error.value)


def test_overlapping_versions_are_refused(tmp_path):
    second = VALID_PLAN.replace("version: 1", "version: 2")
    plans = _plans(tmp_path, demo_v1=VALID_PLAN, demo_v2=second)
    with pytest.raises(PlanError, match="version 2 of 'demo' must start after version 1"):
        compile_plans(plans, _seeds(tmp_path))


def test_a_new_version_closes_the_previous_one(tmp_path):
    second = VALID_PLAN.replace("version: 1", "version: 2").replace("2026-01-01", "2026-03-01")
    compile_plans(_plans(tmp_path, demo_v1=VALID_PLAN, demo_v2=second), seeds := _seeds(tmp_path))
    assert (seeds / "price_plans.csv").read_text().splitlines()[1:] == [
        "demo,1,Demo,USD,month,2026-01-01,2026-03-01",
        "demo,2,Demo,USD,month,2026-03-01,",
    ]


def test_cli_reports_a_bad_plan_without_a_traceback(tmp_path):
    plans = _plans(tmp_path, demo=VALID_PLAN.replace("currency: USD", "currency: usd"))
    result = CliRunner().invoke(
        main, ["plans", "compile", "--plans", str(plans), "--seeds", str(_seeds(tmp_path))]
    )
    assert result.exit_code == 1
    assert (
        "Error:" in result.output
        and "demo.yaml: currency: String should match pattern" in result.output
    )
    assert "Traceback" not in result.output
