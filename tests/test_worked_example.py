"""PRODUCT.md's worked example, reproduced exactly through the whole pipeline (the shared run
conftest.worked_example_warehouse; the draft plan beside it is only simulated)."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from tests.conftest import WORKED_EXAMPLE_GROUP, query

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(WORKED_EXAMPLE_GROUP)]


def test_worked_example_invoice_is_exactly_130_dollars(worked_example_warehouse):
    warehouse, result = worked_example_warehouse

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
