"""Simulation: history priced with draft plans next to the current ones, invoices untouched."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from dagster_billing.cli import main
from dagster_billing.pricing.plans import PlanError, load_plan_file
from dagster_billing.pricing.simulation import build_simulation_plans
from tests.conftest import WORKED_EXAMPLE_DRAFT, WORKED_EXAMPLE_GROUP, query

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(WORKED_EXAMPLE_GROUP)]
DRAFT = WORKED_EXAMPLE_DRAFT


@pytest.fixture
def pipeline_with_a_draft(worked_example_warehouse):
    """The worked example ($130.00) run by the pipeline, with a draft in plans/drafts/."""
    assert worked_example_warehouse.result.success
    return worked_example_warehouse


def test_the_pipeline_simulates_the_drafts_it_finds(pipeline_with_a_draft):
    warehouse, result = pipeline_with_a_draft
    [materialization] = result.asset_materializations_for_node("pricing__simulation")
    assert materialization.metadata["accounts_changed"].value == 1
    summary = json.loads((warehouse.exports_dir / "simulation" / "summary.json").read_text())
    assert summary["totals"] == [
        {
            "currency": "USD",
            "accounts": 1,
            "current_amount": "130.00",
            "draft_amount": "180.00",
            "difference": "50.00",
            "accounts_changed": 1,
        }
    ]
    [(total,)] = query(warehouse, "select total from billing.fct_invoices")
    assert total == Decimal("130.00")


def test_cli_simulates_another_draft_without_touching_the_warehouse(
    pipeline_with_a_draft, tmp_path
):
    warehouse, _ = pipeline_with_a_draft
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "cheaper.yaml").write_text(DRAFT.replace("unit_price: 0.10", "unit_price: 0.04"))
    before = hashlib.sha256(warehouse.duckdb_path.read_bytes()).hexdigest()
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--draft", str(drafts),
            "--data-dir", str(warehouse.root),
            "--plans", warehouse.plans_dir,
            "--seeds", warehouse.seeds_dir,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Simulated worked_example (draft v2 from 2026-01-01)" in result.stdout
    [account_row] = [line for line in result.stdout.splitlines() if line.startswith("acct_example")]
    assert account_row.split() == ["acct_example", "USD", "130.00", "115.00", "-15.00"]
    assert hashlib.sha256(warehouse.duckdb_path.read_bytes()).hexdigest() == before


def test_cli_reports_an_invalid_draft_with_its_file(pipeline_with_a_draft, tmp_path):
    warehouse, _ = pipeline_with_a_draft
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "bad.yaml").write_text(DRAFT.replace("meter: bandwidth.gb", "meter: bandwith.gb"))
    result = CliRunner().invoke(
        main,
        ["simulate", "--draft", str(drafts), "--data-dir", str(warehouse.root),
         "--plans", warehouse.plans_dir, "--seeds", warehouse.seeds_dir],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "bad.yaml: charges[2].meter: unknown meter 'bandwith.gb'" in result.output


def test_drafts_change_only_the_days_from_their_effective_from(pipeline_with_a_draft, tmp_path):
    """v2 from January 15 ($0.003 a call), v3 from February 1: January splits 14/17 days,
    each line priced on the month's whole usage and weighted by its days (decision 18):
    API 100.00 x 14/31 + 150.00 x 17/31 = 45.16 + 82.26, storage 11.29 + 13.71, bandwidth
    2.26 + 2.74 = 157.42 (was 130.00)."""
    warehouse, _ = pipeline_with_a_draft
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "v2.yaml").write_text(
        DRAFT.replace("unit_price: 0.002", "unit_price: 0.003").replace(
            "effective_from: 2026-01-01", "effective_from: 2026-01-15"
        )
    )
    (drafts / "v3.yaml").write_text(
        DRAFT.replace("version: 2", "version: 3")
        .replace("unit_price: 0.002", "unit_price: 0.004")
        .replace("effective_from: 2026-01-01", "effective_from: 2026-02-01")
    )
    result = CliRunner().invoke(
        main,
        ["simulate", "--draft", str(drafts), "--data-dir", str(warehouse.root),
         "--plans", warehouse.plans_dir, "--seeds", warehouse.seeds_dir],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "Simulated worked_example (draft v2 from 2026-01-15 to 2026-02-01), "
        "worked_example (draft v3 from 2026-02-01)" in result.stdout
    )
    [account_row] = [line for line in result.stdout.splitlines() if line.startswith("acct_example")]
    assert account_row.split() == ["acct_example", "USD", "130.00", "157.42", "27.42"]


def _plan_file(path, version: int, start: str, price: str, end: str | None = None):
    path.write_text(
        f"code: p\nversion: {version}\nname: P\neffective_from: {start}\n"
        + (f"effective_to: {end}\n" if end else "")
        + "currency: USD\ncharges:\n"
        + f"  - {{id: api, meter: api.requests, model: per_unit, unit_price: {price}}}\n"
    )


def _windows(plans_dir) -> list[tuple]:
    plans = [load_plan_file(path) for path in sorted(plans_dir.glob("*.yaml"))]
    return sorted(
        (str(plan.effective_from), str(plan.effective_to), str(plan.charges[0].unit_price))
        for plan in plans
    )


def test_current_versions_stay_in_force_outside_the_drafts_windows(tmp_path):
    plans, drafts = tmp_path / "plans", tmp_path / "drafts"
    plans.mkdir(), drafts.mkdir()
    _plan_file(plans / "v1.yaml", 1, "2026-01-01", "1")
    _plan_file(plans / "v2.yaml", 2, "2026-05-01", "2")
    _plan_file(drafts / "a.yaml", 3, "2026-03-01", "3", end="2026-06-01")
    _plan_file(drafts / "b.yaml", 4, "2026-08-01", "4", end="2026-09-01")
    built = build_simulation_plans(plans, drafts, tmp_path / "simulated")
    assert [(d.version, str(d.effective_from), str(d.effective_to)) for d in built] == [
        (3, "2026-03-01", "2026-06-01"),
        (4, "2026-08-01", "2026-09-01"),
    ]
    assert _windows(tmp_path / "simulated") == [
        ("2026-01-01", "2026-03-01", "1"),
        ("2026-03-01", "2026-06-01", "3"),
        ("2026-06-01", "2026-08-01", "2"),
        ("2026-08-01", "2026-09-01", "4"),
        ("2026-09-01", "None", "2"),
    ]


def test_two_drafts_of_one_plan_from_the_same_day_are_refused(tmp_path):
    plans, drafts = tmp_path / "plans", tmp_path / "drafts"
    plans.mkdir(), drafts.mkdir()
    _plan_file(plans / "v1.yaml", 1, "2026-01-01", "1")
    _plan_file(drafts / "a.yaml", 2, "2026-03-01", "2")
    _plan_file(drafts / "b.yaml", 3, "2026-03-01", "3")
    with pytest.raises(
        PlanError, match=r"b\.yaml: effective_from: 'p' is drafted twice from 2026-03-01"
    ):
        build_simulation_plans(plans, drafts, tmp_path / "simulated")
