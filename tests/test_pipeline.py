"""The whole pipeline on generated data: nothing lost, exact totals, replayable byte for byte."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_billing.datagen import generate_events
from dagster_billing.paths import SEEDS_DIR
from tests.conftest import make_warehouse, query, run_pipeline

EVENTS = 20_000


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, object]:
    landing = tmp_path_factory.mktemp("generated") / "landing"
    summary = generate_events(
        landing,
        events=EVENTS,
        seed=11,
        accounts_csv=SEEDS_DIR / "accounts.csv",
        meters_csv=SEEDS_DIR / "meters.csv",
    )
    return landing, summary


@pytest.fixture(scope="module")
def first_run(generated, tmp_path_factory):
    landing, _ = generated
    warehouse = make_warehouse(tmp_path_factory.mktemp("first"))
    shutil.copytree(landing, warehouse.landing_dir)
    result = run_pipeline(warehouse)
    return warehouse, result


def _exports(warehouse) -> dict[str, bytes]:
    root = warehouse.exports_dir
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.csv"))}


def test_every_check_passes(first_run):
    _, result = first_run
    evaluations = result.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    assert evaluations and not failed


def test_outcomes_match_what_the_generator_wrote(generated, first_run):
    _, summary = generated
    warehouse, _ = first_run
    outcomes = dict(
        query(
            warehouse, "select outcome, count(*) from billing.fct_usage_event_outcomes group by 1"
        )
    )
    assert sum(outcomes.values()) == summary.total_rows
    assert outcomes["accepted"] == summary.valid_events
    assert outcomes["duplicate"] == summary.duplicates + summary.conflicting_duplicates
    assert outcomes["quarantined"] == sum(summary.malformed.values())
    [(conflicts,)] = query(
        warehouse, "select count(*) from billing.fct_usage_event_outcomes where is_conflicting"
    )
    assert conflicts == summary.conflicting_duplicates


def test_invoice_totals_equal_their_lines_exactly(first_run):
    warehouse, _ = first_run
    totals = dict(query(warehouse, "select invoice_id, total from billing.fct_invoices"))
    lines: dict[str, Decimal] = {}
    for invoice_id, amount in query(
        warehouse, "select invoice_id, amount from billing.fct_invoice_lines"
    ):
        lines[invoice_id] = lines.get(invoice_id, Decimal(0)) + amount
    assert totals and totals == lines
    assert all(isinstance(total, Decimal) for total in totals.values())


def test_exports_are_written_per_period(first_run):
    warehouse, _ = first_run
    assert sorted(_exports(warehouse)) == [
        "invoices/2026-01/invoice_lines.csv",
        "invoices/2026-01/invoices.csv",
        "invoices/2026-02/invoice_lines.csv",
        "invoices/2026-02/invoices.csv",
    ]


def test_replay_from_raw_gives_byte_identical_exports(generated, first_run, tmp_path):
    landing, _ = generated
    first, _ = first_run
    second = make_warehouse(tmp_path)
    shutil.copytree(landing, second.landing_dir)

    run_pipeline(second)

    assert _exports(second) == _exports(first)
    invoices = "select * exclude (account_name) from billing.fct_invoices order by invoice_id"
    assert query(second, invoices) == query(first, invoices)


def test_rerunning_on_the_same_warehouse_changes_nothing(first_run):
    warehouse, _ = first_run
    before_files = query(warehouse, "select * from raw.landed_files order by file_seq")
    before_exports = _exports(warehouse)

    run_pipeline(warehouse)

    assert query(warehouse, "select * from raw.landed_files order by file_seq") == before_files
    assert _exports(warehouse) == before_exports
