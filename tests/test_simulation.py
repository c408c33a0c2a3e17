"""Simulation: history priced with draft plans next to the current ones, invoices untouched."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from dagster_billing.cli import main
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
    assert "Simulated worked_example (draft v2)" in result.stdout
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
