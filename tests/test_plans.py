"""Plans: YAML -> validated models -> price tables, with clear errors for bad plans."""

from __future__ import annotations

import csv
import re
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dagster_billing.cli import main
from dagster_billing.paths import PLAN_SCHEMA_PATH, PLANS_DIR, REPO_ROOT, SEEDS_DIR
from dagster_billing.pricing.plan_loader import PlanErrors, validate_plans
from dagster_billing.pricing.plans import (
    PRICE_TABLES,
    Commitment,
    PlanError,
    PlanOverride,
    PlanVersion,
    Reference,
    compile_plans,
    load_plan_file,
    plan_json_schema_text,
)

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

EVERY_MODEL = """
code: every
version: 1
name: Every model
effective_from: 2026-01-01
currency: USD
commitment: {minimum: 100.00, discount_percent: 18}
charges:
  - {id: unit, meter: api.requests, model: per_unit, unit_price: 0.002, free_units: 10}
  - id: vol
    meter: builds.completed
    model: volume
    tiers: [{up_to: 5, unit_price: 1, flat_fee: 2}, {up_to: null, unit_price: 0.5}]
  - {id: pkg, meter: api.requests, model: package, package_size: 100, package_price: 5, rounding: down}
  - {id: pct, meter: pipeline.rows_processed, model: percentage, rate: 1.3, fixed_fee: 0.3, free_transactions: 2}
  - id: tokens
    meter: tokens.generated
    model: matrix
    dimension: model
    prices: {gpt-4o: 0.00001, llama-3-70b: 0.0000009}
    default_unit_price: 0.000002
  - {id: gpu, meter: compute.gpu_seconds, model: per_unit, unit_price: 0.001, group_by: region}
  - {id: gpu_eu, meter: compute.gpu_seconds, model: per_unit, unit_price: 0.002, filter: {region: eu}}
  - {id: seats, meter: seats.active, model: seat, unit_price: 12, included_seats: 2, proration: daily}
  - {id: platform, model: flat, amount: 99.00, billing: in_advance, discount_percent: 10}
  - {id: capped, meter: checks.executed, model: per_unit, unit_price: 0.1, minimum_spend: 5, maximum_spend: 50}
  - id: gradpct
    meter: pipeline.rows_processed
    model: graduated_percentage
    tiers: [{up_to: 10, rate: 1, flat_fee: 200}, {up_to: null, rate: 2.5}]
  - id: blocks
    meter: minutes.transcribed
    model: tiered_blocks
    policy: top_tier
    tiers: [{block_size: 100, max_blocks: 10, block_price: 1}, {block_size: 1000, max_blocks: null, block_price: 0.5}]
  - {id: cost, meter: tokens.generated, model: dynamic, amount_property: cost, multiplier: 1.2}
"""


def _seeds(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("meters.csv", "currencies.csv", "accounts.csv"):
        shutil.copy(SEEDS_DIR / name, seeds / name)
    return seeds


def _plans(tmp_path: Path, **files: str) -> Path:
    plans = tmp_path / "plans"
    plans.mkdir(exist_ok=True)
    for name, text in files.items():
        path = plans / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return plans


def _rows(seeds: Path, table: str) -> list[dict[str, str]]:
    with (seeds / f"{table}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_committed_price_seeds_are_compiled_from_committed_plans(tmp_path):
    seeds = _seeds(tmp_path)
    compile_plans(PLANS_DIR, seeds)
    for table in PRICE_TABLES:
        assert (seeds / f"{table}.csv").read_text() == (SEEDS_DIR / f"{table}.csv").read_text(), (
            f"seeds/{table}.csv is stale: run `billing plans compile`"
        )


def test_committed_json_schema_is_current():
    assert PLAN_SCHEMA_PATH.read_text() == plan_json_schema_text(), (
        "docs/plan.schema.json is stale: run `billing plans schema`"
    )
    result = CliRunner().invoke(main, ["plans", "schema", "--check"])
    assert result.exit_code == 0, result.output


def test_schema_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "plan.schema.json"
    stale.write_text("{}\n")
    result = CliRunner().invoke(main, ["plans", "schema", "--check", "--out", str(stale)])
    assert result.exit_code == 1 and "is stale" in result.output


def test_scale_2026_is_the_product_example():
    plan = load_plan_file(PLANS_DIR / "scale_2026.yaml")
    api = next(charge for charge in plan.charges if charge.id == "api_requests")
    assert api.model == "graduated"
    assert [(tier.up_to, tier.unit_price) for tier in api.tiers] == [
        (Decimal(1_000_000), Decimal("0.0009")),
        (Decimal(50_000_000), Decimal("0.0006")),
        (None, Decimal("0.0004")),
    ]
    assert plan.commitment.discount_percent == Decimal(18)


def _doc_examples() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "docs" / "plans.md").read_text()
    return [(block, block.split(":")[0]) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


@pytest.mark.parametrize(("block", "kind"), _doc_examples())
def test_every_example_in_the_plans_docs_is_valid(block, kind):
    data = yaml.safe_load(block)
    if kind == "- id":
        PlanVersion.model_validate(
            {
                "code": "doc",
                "version": 1,
                "name": "doc",
                "effective_from": "2026-01-01",
                "currency": "USD",
                "charges": data,
            }
        )
    elif kind == "code":
        PlanVersion.model_validate(data)
    elif kind == "account":
        PlanOverride.model_validate(data)
    elif kind == "commitment":
        Commitment.model_validate(data["commitment"])
    else:
        pytest.fail(f"unexpected example kind {kind!r}")


def test_the_docs_show_one_example_per_model():
    models = {
        yaml.safe_load(block)[0]["model"] for block, kind in _doc_examples() if kind == "- id"
    }
    assert models == {
        "per_unit",
        "graduated",
        "volume",
        "package",
        "percentage",
        "matrix",
        "seat",
        "graduated_percentage",
        "tiered_blocks",
        "dynamic",
        "flat",
    }


def test_numbers_are_read_as_exact_decimals(tmp_path):
    plans = _plans(tmp_path, demo=VALID_PLAN)
    plan = load_plan_file(plans / "demo.yaml")
    assert plan.charges[0].tiers[0].unit_price == Decimal("0.0009")
    assert isinstance(plan.charges[0].tiers[0].unit_price, Decimal)


def test_tiers_compile_to_cumulative_bounds(tmp_path):
    compile_plans(_plans(tmp_path, demo=VALID_PLAN), seeds := _seeds(tmp_path))
    assert (seeds / "price_tiers.csv").read_text().splitlines() == [
        "plan_code,plan_version,charge_id,dimension_value,tier_number,lower_bound,upper_bound,"
        "unit_price,flat_fee,block_size,rate_percent",
        "demo,1,api,*,1,0,1000,0.0009,0,,",
        "demo,1,api,*,2,1000,,0.0006,5,,",
    ]


def test_every_model_compiles_to_typed_rows(tmp_path):
    compile_plans(_plans(tmp_path, every=EVERY_MODEL), seeds := _seeds(tmp_path))
    [plan] = _rows(seeds, "price_plans")
    assert (plan["commitment_minimum"], plan["commitment_discount_percent"]) == ("100", "18")
    charges = {
        (row["charge_id"], row["dimension_value"]): row for row in _rows(seeds, "price_charges")
    }
    assert {key: row["dimension_match"] for key, row in charges.items()} == {
        ("unit", "*"): "all",
        ("vol", "*"): "all",
        ("pkg", "*"): "all",
        ("pct", "*"): "all",
        ("tokens", "gpt-4o"): "value",
        ("tokens", "llama-3-70b"): "value",
        ("tokens", "*"): "each",
        ("gpu", "*"): "each",
        ("gpu_eu", "eu"): "value",
        ("seats", "*"): "all",
        ("platform", "*"): "all",
        ("capped", "*"): "all",
        ("gradpct", "*"): "all",
        ("blocks", "*"): "all",
        ("cost", "*"): "all",
    }
    assert charges[("blocks", "*")]["block_policy"] == "top_tier"
    assert (charges[("cost", "*")]["amount_property"], charges[("cost", "*")]["multiplier"]) == (
        "cost",
        "1.2",
    )
    tier_rows = {
        (row["charge_id"], row["tier_number"]): (
            row["lower_bound"],
            row["upper_bound"],
            row["unit_price"],
            row["flat_fee"],
            row["block_size"],
            row["rate_percent"],
        )
        for row in _rows(seeds, "price_tiers")
        if row["charge_id"] in ("gradpct", "blocks")
    }
    assert tier_rows == {
        ("gradpct", "1"): ("0", "10", "0.01", "200", "", "1"),
        ("gradpct", "2"): ("10", "", "0.025", "0", "", "2.5"),
        ("blocks", "1"): ("0", "1000", "1", "0", "100", ""),
        ("blocks", "2"): ("1000", "", "0.5", "0", "1000", ""),
    }
    assert charges[("pkg", "*")]["package_rounding"] == "down"
    assert charges[("pct", "*")]["percentage_rate"] == "1.3"
    assert charges[("pct", "*")]["free_transactions"] == "2"
    assert charges[("seats", "*")]["free_units"] == "2"
    assert charges[("seats", "*")]["seat_proration"] == "daily"
    assert charges[("platform", "*")]["meter_code"] == ""
    assert (
        charges[("platform", "*")]["billing_timing"],
        charges[("platform", "*")]["prorate"],
    ) == (
        "in_advance",
        "true",
    )
    assert (
        charges[("capped", "*")]["minimum_spend"],
        charges[("capped", "*")]["maximum_spend"],
    ) == (
        "5",
        "50",
    )
    tiers = {
        (row["charge_id"], row["dimension_value"], row["tier_number"])
        for row in _rows(seeds, "price_tiers")
    }
    assert ("tokens", "gpt-4o", "1") in tiers and ("tokens", "*", "1") in tiers
    assert not any(charge == "pkg" or charge == "platform" for charge, _, _ in tiers)


INVALID = [
    (
        (
            "{up_to: 1000, unit_price: 0.0009}",
            "{up_to: 2000, unit_price: 0.0009}\n      - {up_to: 1000, unit_price: 0.0008}",
        ),
        "charges[0].tiers: Value error, tier up_to bounds must be positive and strictly ascending",
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
    (
        ("unit_price: 0.0009", "unit_price: 0.00000000001"),
        "charges[0].tiers[0].unit_price: Decimal input should have no more than 10 decimal places",
    ),
    (("name: Demo\n", ""), "name: Field required"),
    (("model: graduated", "model: tiered"), "charges[0].model: unknown price model 'tiered'"),
    (
        ("{up_to: null, unit_price: 0.0006, flat_fee: 5}", "{up_to: 5000, unit_price: 0.0006}"),
        "the last tier must have up_to: null",
    ),
    (
        ("model: graduated", "model: graduated\n    colour: red"),
        "charges[0].colour: Extra inputs are not permitted",
    ),
    (
        ("model: graduated", "model: graduated\n    group_by: model"),
        "charges[0]: meter 'api.requests' has no dimension; cannot price by 'model'",
    ),
    (
        ("model: graduated", "model: graduated\n    aggregation: count"),
        "charges[0].aggregation: meter 'api.requests' aggregates by 'sum', not 'count'",
    ),
    (
        ("model: graduated", "model: graduated\n    minimum_spend: 10\n    maximum_spend: 5"),
        "charges[0]: Value error, minimum_spend must not exceed maximum_spend",
    ),
    (
        ("effective_from: 2026-01-01", "effective_from: 2026-01-01\neffective_to: 2025-12-01"),
        "Value error, effective_to must be after effective_from",
    ),
    (
        ("charges:\n", "charges:\n  - {id: api, model: flat, amount: 1}\n"),
        "Value error, charge id 'api' is used twice",
    ),
    (
        (
            "charges:\n",
            "charges:\n  - {id: p, meter: builds.completed, model: percentage, rate: 1}\n",
        ),
        "charges[0].meter: a percentage charge needs a sum meter",
    ),
    (
        ("charges:\n", "charges:\n  - {id: s, meter: api.requests, model: seat, unit_price: 1}\n"),
        "charges[0].meter: a seat charge needs a unique_count meter",
    ),
    (
        (
            "charges:\n",
            "charges:\n  - {id: p, model: package, meter: api.requests, package_size: 0, package_price: 1}\n",
        ),
        "charges[0].package_size: Input should be greater than 0",
    ),
    (
        ("charges:\n", "commitment: {}\ncharges:\n"),
        "commitment: Value error, a commitment needs a minimum",
    ),
    (
        (
            "charges:\n",
            "charges:\n  - {id: b, meter: api.requests, model: tiered_blocks, tiers: "
            "[{block_size: 10, max_blocks: 2, block_price: 1}]}\n",
        ),
        "charges[0].tiers: Value error, the last tier must have max_blocks: null (unlimited)",
    ),
    (
        (
            "charges:\n",
            "charges:\n  - {id: d, meter: builds.completed, model: dynamic}\n",
        ),
        "charges[0].meter: a dynamic charge needs a sum meter",
    ),
    (
        (
            "charges:\n",
            "charges:\n  - {id: g, meter: builds.completed, model: graduated_percentage, "
            "tiers: [{up_to: null, rate: 1}]}\n",
        ),
        "charges[0].meter: a graduated_percentage charge needs a sum meter",
    ),
    (
        ("charges:\n", "commitment: {minimum: 100000000000000}\ncharges:\n"),
        "commitment.minimum: Input should be less than 1000000000000 "
        "(10^12: the largest price or amount a plan may state)",
    ),
    (
        ("unit_price: 0.0009", "unit_price: 1000000000000"),
        "charges[0].tiers[0].unit_price: Input should be less than 1000000000000 (10^12",
    ),
    (
        ("up_to: 1000,", "up_to: 1000000000000000000,"),
        "charges[0].tiers[0].up_to: Input should be less than 1000000000000000000 (10^18",
    ),
]


@pytest.mark.parametrize(("change", "message"), INVALID)
def test_invalid_plans_name_file_path_and_reason(tmp_path, change, message):
    old, new = change
    assert old in VALID_PLAN
    plans = _plans(tmp_path, demo=VALID_PLAN.replace(old, new, 1))
    with pytest.raises(PlanError) as error:
        compile_plans(plans, _seeds(tmp_path))
    assert str(plans / "demo.yaml") in str(error.value)
    assert message in str(error.value)


def test_amounts_finer_than_the_currency_are_kept_exactly(tmp_path):
    """Decision 54: 250.5 JPY and 20.005 USD are valid; the invoice line rounds them once."""
    yen = VALID_PLAN.replace("currency: USD", "currency: JPY").replace(
        "charges:\n", "charges:\n  - {id: fee, model: flat, amount: 250.5}\n"
    )
    dollars = VALID_PLAN.replace("code: demo", "code: usd").replace(
        "charges:\n",
        "commitment: {minimum: 20.005}\ncharges:\n  - {id: fee, model: flat, amount: 7.777}\n",
    )
    seeds = _seeds(tmp_path)
    compile_plans(_plans(tmp_path, demo=yen, usd=dollars), seeds)
    amounts = {
        row["plan_code"]: row["flat_amount"]
        for row in _rows(seeds, "price_charges")
        if row["charge_id"] == "fee"
    }
    assert amounts == {"demo": "250.5", "usd": "7.777"}
    [commitment] = [
        row["commitment_minimum"]
        for row in _rows(seeds, "price_plans")
        if row["plan_code"] == "usd"
    ]
    assert commitment == "20.005"


def test_overlapping_versions_are_refused(tmp_path):
    second = VALID_PLAN.replace("version: 1", "version: 2")
    plans = _plans(tmp_path, demo_v1=VALID_PLAN, demo_v2=second)
    with pytest.raises(PlanError, match="version 2 of 'demo' must start after version 1"):
        compile_plans(plans, _seeds(tmp_path))


def test_an_explicit_end_may_not_overlap_the_next_version(tmp_path):
    first = VALID_PLAN.replace(
        "effective_from: 2026-01-01", "effective_from: 2026-01-01\neffective_to: 2026-04-01"
    )
    second = VALID_PLAN.replace("version: 1", "version: 2").replace("2026-01-01", "2026-03-01")
    plans = _plans(tmp_path, demo_v1=first, demo_v2=second)
    with pytest.raises(
        PlanError, match=r"demo_v1\.yaml: effective_to: version 1 of 'demo' overlaps version 2"
    ):
        compile_plans(plans, _seeds(tmp_path))


def test_versions_keep_their_currency(tmp_path):
    second = (
        VALID_PLAN.replace("version: 1", "version: 2")
        .replace("2026-01-01", "2026-03-01")
        .replace("currency: USD", "currency: EUR")
    )
    with pytest.raises(PlanError, match="versions of 'demo' must keep one currency"):
        compile_plans(_plans(tmp_path, demo_v1=VALID_PLAN, demo_v2=second), _seeds(tmp_path))


def test_a_new_version_closes_the_previous_one(tmp_path):
    second = VALID_PLAN.replace("version: 1", "version: 2").replace("2026-01-01", "2026-03-01")
    plans = _plans(tmp_path, **{"demo/v1": VALID_PLAN, "demo/v2": second})
    compile_plans(plans, seeds := _seeds(tmp_path))
    assert [
        (row["plan_code"], row["plan_version"], row["effective_from"], row["effective_to"])
        for row in _rows(seeds, "price_plans")
    ] == [("demo", "1", "2026-01-01", "2026-03-01"), ("demo", "2", "2026-03-01", "")]


def test_drafts_are_not_compiled(tmp_path):
    plans = _plans(tmp_path, demo=VALID_PLAN, **{"drafts/demo": "not: [a valid plan"})
    assert compile_plans(plans, _seeds(tmp_path))["price_plans"] == 1


OVERRIDE = """
account: acct_meridian
plan: demo
effective_from: 2026-02-01
commitment: {minimum: 1000.00}
charges:
  - id: api
    tiers:
      - {up_to: null, unit_price: 0.0001}
  - {id: support, model: flat, amount: 500.00}
"""


def test_an_override_compiles_to_account_versions_in_its_window(tmp_path):
    second = VALID_PLAN.replace("version: 1", "version: 2").replace("2026-01-01", "2026-03-01")
    plans = _plans(tmp_path, demo_v1=VALID_PLAN, demo_v2=second, **{"overrides/meridian": OVERRIDE})
    compile_plans(plans, seeds := _seeds(tmp_path))
    assert [
        (
            row["plan_code"],
            row["plan_version"],
            row["base_plan_code"],
            row["account_id"],
            row["effective_from"],
            row["effective_to"],
            row["commitment_minimum"],
        )
        for row in _rows(seeds, "price_plans")
    ] == [
        ("demo", "1", "demo", "", "2026-01-01", "2026-03-01", ""),
        ("demo", "2", "demo", "", "2026-03-01", "", ""),
        ("demo@acct_meridian", "1", "demo", "acct_meridian", "2026-02-01", "2026-03-01", "1000"),
        ("demo@acct_meridian", "2", "demo", "acct_meridian", "2026-03-01", "", "1000"),
    ]
    overridden = [
        (row["charge_id"], row["unit_price"])
        for row in _rows(seeds, "price_tiers")
        if row["plan_code"] == "demo@acct_meridian" and row["plan_version"] == "1"
    ]
    assert overridden == [("api", "0.0001")]
    charges = {
        row["charge_id"]: row["pricing_model"]
        for row in _rows(seeds, "price_charges")
        if row["plan_code"] == "demo@acct_meridian"
    }
    assert charges == {"api": "graduated", "support": "flat"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            OVERRIDE.replace("acct_meridian", "acct_nobody"),
            "account: unknown account 'acct_nobody'",
        ),
        (OVERRIDE.replace("plan: demo", "plan: nope"), "plan: unknown plan 'nope'"),
        (
            OVERRIDE.replace(
                "      - {up_to: null, unit_price: 0.0001}",
                "      - {up_to: 10, unit_price: 0.0001}",
            ),
            "(on demo v1) charges[api].tiers: Value error, the last tier must have up_to: null",
        ),
        (OVERRIDE + "remove_charges: [ghost]\n", "remove_charges: unknown charge ids ['ghost']"),
        (OVERRIDE.replace("account: acct_meridian\n", ""), "account: Field required"),
    ],
)
def test_invalid_overrides_name_the_override_file(tmp_path, override, message):
    plans = _plans(tmp_path, demo=VALID_PLAN, **{"overrides/meridian": override})
    with pytest.raises(PlanError) as error:
        compile_plans(plans, _seeds(tmp_path))
    assert str(plans / "overrides" / "meridian.yaml") in str(error.value)
    assert message in str(error.value)


def test_overlapping_overrides_for_one_account_are_refused(tmp_path):
    plans = _plans(
        tmp_path,
        demo=VALID_PLAN,
        **{"overrides/a": OVERRIDE, "overrides/b": OVERRIDE.replace("2026-02-01", "2026-05-01")},
    )
    with pytest.raises(PlanError, match="in a window that overlaps"):
        compile_plans(plans, _seeds(tmp_path))


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


def test_cli_reports_invalid_yaml_without_a_traceback(tmp_path):
    plans = _plans(tmp_path, demo="code: [unclosed")
    result = CliRunner().invoke(
        main, ["plans", "compile", "--plans", str(plans), "--seeds", str(_seeds(tmp_path))]
    )
    assert result.exit_code == 1
    assert "demo.yaml: not valid YAML" in result.output and "Traceback" not in result.output


def test_every_problem_of_every_plan_is_reported_at_once(tmp_path):
    plans = _plans(
        tmp_path,
        demo=VALID_PLAN.replace("meter: api.requests", "meter: api.reqests").replace(
            "charges:\n",
            "charges:\n  - {id: gpu, meter: gpu.typo, model: per_unit, unit_price: 1}\n",
        ),
        other=VALID_PLAN.replace("code: demo", "code: other").replace(
            "currency: USD", "currency: usd"
        ),
        fine=VALID_PLAN.replace("code: demo", "code: fine"),
    )
    seeds = _seeds(tmp_path)
    with pytest.raises(PlanErrors) as error:
        compile_plans(plans, seeds)
    assert [(p.plan_code, p.message.split(": ", 1)[1]) for p in error.value.problems] == [
        (
            "demo",
            "charges[0].meter: unknown meter 'gpu.typo'; "
            "charges[1].meter: unknown meter 'api.reqests'",
        ),
        ("other", "currency: String should match pattern '^[A-Z]{3}$'"),
    ]
    validation = validate_plans(plans, Reference.from_seeds(seeds))
    assert {version.plan_code for version in validation.versions} == {"fine"}
    assert validation.failed_plans == {"demo", "other"}
    result = CliRunner().invoke(
        main, ["plans", "compile", "--plans", str(plans), "--seeds", str(seeds)]
    )
    assert result.exit_code == 1
    assert "unknown meter 'gpu.typo'" in result.output and "should match pattern" in result.output


def test_zero_free_allowances_mean_none(tmp_path):
    plan = VALID_PLAN.replace(
        "charges:\n",
        "charges:\n  - {id: pct, meter: pipeline.rows_processed, model: percentage, rate: 1, "
        "free_amount: 0, free_transactions: 0}\n",
    )
    [charge] = [
        c
        for c in load_plan_file(_plans(tmp_path, demo=plan) / "demo.yaml").charges
        if c.id == "pct"
    ]
    assert (charge.free_amount, charge.free_transactions) == (None, None)


# Multi-dimensional meters (decision 81): llm.calls is keyed by model and region.
MULTI_KEY_METERS = (
    "llm.calls,sum,call,model|region,,LLM calls by model and region\n"
    "llm.users,unique_count,user,model|region,user_id,Distinct users by model and region\n"
)
MULTI_KEY_PLAN = """
code: multi
version: 1
name: Multi
effective_from: 2026-01-01
currency: USD
charges:
  - id: calls
    meter: llm.calls
    model: matrix
    prices:
      - {filter: {model: gpt-4o, region: eu}, unit_price: 3}
      - {filter: {region: eu}, unit_price: 2}
      - {filter: {model: gpt-4o}, unit_price: 1.5}
    default_unit_price: 1
  - {id: eu_calls, meter: llm.calls, model: per_unit, unit_price: 0.5, filter: {region: eu}}
  - {id: one_pair, meter: llm.calls, model: per_unit, unit_price: 0.5, filter: {region: us, model: o1}}
  - {id: each_pair, meter: llm.calls, model: per_unit, unit_price: 0.1, group_by: [region, model]}
  - {id: by_model, meter: tokens.generated, model: matrix, dimension: model, prices: {gpt-4o: 0.00001}}
"""


def _multi_key_seeds(tmp_path: Path) -> Path:
    seeds = _seeds(tmp_path)
    with (seeds / "meters.csv").open("a") as handle:
        handle.write(MULTI_KEY_METERS)
    return seeds


def test_multi_key_filters_compile_to_combinations_and_patterns(tmp_path):
    """A filter on every key is one combination (`value`), on some keys a pattern (`filter`,
    '*' for the free keys), keys in the meter's order whatever the plan's; a single-key matrix
    compiles as before."""
    seeds = _multi_key_seeds(tmp_path)
    compile_plans(_plans(tmp_path, multi=MULTI_KEY_PLAN), seeds)
    rows = [
        (row["charge_id"], row["dimension_value"], row["dimension_match"])
        for row in _rows(seeds, "price_charges")
    ]
    assert rows == [
        ("calls", "model=*|region=eu", "filter"),
        ("calls", "model=gpt-4o|region=*", "filter"),
        ("calls", "model=gpt-4o|region=eu", "value"),
        ("calls", "*", "each"),
        ("eu_calls", "model=*|region=eu", "filter"),
        ("one_pair", "model=o1|region=us", "value"),
        ("each_pair", "*", "each"),
        ("by_model", "gpt-4o", "value"),
    ]
    prices = {
        row["dimension_value"]: Decimal(row["unit_price"])
        for row in _rows(seeds, "price_tiers")
        if row["charge_id"] == "calls"
    }
    assert prices == {
        "model=*|region=eu": Decimal(2),
        "model=gpt-4o|region=*": Decimal("1.5"),
        "model=gpt-4o|region=eu": Decimal(3),
        "*": Decimal(1),
    }


AMBIGUOUS = [
    (
        "      - {filter: {model: gpt-4o, region: eu}, unit_price: 3}\n",
        "",
        "charges[0]: Value error, prices[0] {region: eu} and prices[1] {model: gpt-4o} are "
        "ambiguous: both match {model: gpt-4o, region: eu} with 1 key(s) each",
    ),
    (
        "      - {filter: {model: gpt-4o}, unit_price: 1.5}\n",
        "      - {filter: {model: gpt-4o}, unit_price: 1.5}\n"
        "      - {filter: {model: gpt-4o}, unit_price: 1.25}\n",
        "charges[0]: Value error, prices[2] and prices[3] have the same filter {model: gpt-4o}",
    ),
    (
        "unit_price: 0.5, filter: {region: eu}",
        "unit_price: 0.5, filter: {region: eu, colour: red}",
        "charges[1]: meter 'llm.calls' has model|region; cannot price by 'colour'",
    ),
    (
        "group_by: [region, model]",
        "group_by: region",
        "charges[3].group_by: meter 'llm.calls' has several keys (model|region); group_by "
        "lists all of them",
    ),
    (
        "filter: {region: us, model: o1}",
        "filter: {region: us, model: '*'}",
        "charges[2]: '*' is not a dimension value to filter on",
    ),
    (
        "{id: eu_calls, meter: llm.calls, model: per_unit",
        "{id: eu_calls, meter: llm.users, model: seat",
        "charges[1]: a filter on some of the keys of 'llm.users' sums the quantities of its "
        "combinations, which needs a sum, count or max meter, not 'unique_count'",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), AMBIGUOUS)
def test_ambiguous_or_unknown_dimension_filters_are_refused(tmp_path, old, new, message):
    """Decision 81: the most specific filter wins; two filters with as many keys that both
    match a combination are refused unless that combination is listed too."""
    assert old in MULTI_KEY_PLAN
    plans = _plans(tmp_path, multi=MULTI_KEY_PLAN.replace(old, new, 1))
    with pytest.raises(PlanError) as error:
        compile_plans(plans, _multi_key_seeds(tmp_path))
    assert str(plans / "multi.yaml") in str(error.value)
    assert message in str(error.value)
