"""PRODUCT.md's worked example, reproduced exactly through the whole pipeline."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal

from tests.conftest import FIXTURES, copy_reference_seeds, make_warehouse, query, run_pipeline

CASE = FIXTURES / "worked_example"


def test_worked_example_invoice_is_exactly_130_dollars(tmp_path):
    seeds = copy_reference_seeds(
        tmp_path / "seeds",
        **{
            name: (CASE / name).read_text()
            for name in ("meters.csv", "accounts.csv", "subscriptions.csv")
        },
    )
    warehouse = make_warehouse(tmp_path, plans_dir=CASE / "plans", seeds_dir=seeds)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage.ndjson", warehouse.landing_dir)

    result = run_pipeline(warehouse)

    assert result.success
    lines = query(
        warehouse,
        "select charge_id, quantity, unit_price, amount from billing.fct_invoice_lines order by line_number",
    )
    assert lines == [
        # In the plan's order of charges.
        ("api_calls", Decimal("50000"), Decimal("0.002"), Decimal("100.00")),
        ("storage", Decimal("250"), Decimal("0.10"), Decimal("25.00")),
        ("bandwidth", Decimal("100"), Decimal("0.05"), Decimal("5.00")),
    ]
    [(invoice_id, total, total_minor)] = query(
        warehouse, "select invoice_id, total, total_minor from billing.fct_invoices"
    )
    assert (invoice_id, total, total_minor) == (
        "inv-acct_example-2026-01-01",
        Decimal("130.00"),
        13000,
    )
    with (warehouse.exports_dir / "invoices" / "2026-01" / "invoices.csv").open() as handle:
        [exported] = list(csv.DictReader(handle))
    assert (exported["line_count"], exported["subtotal"], exported["total"]) == (
        "3",
        "130.00",
        "130.00",
    )
