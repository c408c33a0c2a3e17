"""Anniversary billing: an account with anchor day 15 (seeds/billing_cycles.csv) is billed from
the 15th to the 14th, next to an account billed by calendar month on the same plan and usage.
Periods close, finalize and number like calendar months."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import (
    FIXTURES,
    case_warehouse,
    close_period,
    query,
    run_pipeline,
)

pytestmark = pytest.mark.slow
CASE = FIXTURES / "anniversary"
D = Decimal


@pytest.fixture(scope="module")
def billed(tmp_path_factory):
    root = tmp_path_factory.mktemp("anniversary")
    warehouse = case_warehouse(root, CASE)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage.ndjson", warehouse.landing_dir)
    assert run_pipeline(warehouse, as_of="2026-02-18T00:30:00").success
    # The period Jan 15 - Feb 15 closes on Feb 18 (3 days' grace), in January's close partition.
    assert close_period(warehouse, "2026-01-01", as_of="2026-02-18T01:00:00").success
    return warehouse


def _invoices(warehouse) -> list[tuple]:
    return query(
        warehouse,
        "select invoice_id, period_start, period_end, status, invoice_number, total "
        "from billing.fct_invoices order by account_id, period_start",
    )


def _lines(warehouse, invoice_id: str) -> list[tuple]:
    return query(
        warehouse,
        "select charge_id, quantity, amount from billing.fct_invoice_lines "
        "where invoice_id = ? order by line_number",
        [invoice_id],
    )


def test_anniversary_periods_run_from_the_anchor_day(billed):
    assert _invoices(billed) == [
        (
            "inv-acct_anniv-2026-01-15",
            date(2026, 1, 15),
            date(2026, 2, 15),
            "final",
            "2026-0002",
            D("31.50"),
        ),
        (
            "inv-acct_anniv-2026-02-15",
            date(2026, 2, 15),
            date(2026, 3, 15),
            "draft",
            None,
            D("30.10"),
        ),
        (
            "inv-acct_calendar-2026-01-01",
            date(2026, 1, 1),
            date(2026, 2, 1),
            "final",
            "2026-0001",
            D("17.45"),
        ),
        (
            "inv-acct_calendar-2026-02-01",
            date(2026, 2, 1),
            date(2026, 3, 1),
            "draft",
            None,
            D("30.60"),
        ),
    ]


def test_usage_and_fees_follow_the_account_cycle(billed):
    # Jan 20 and Feb 10 are in the period that starts Jan 15; the subscription starts on the
    # anchor day, so the fee is not prorated.
    assert _lines(billed, "inv-acct_anniv-2026-01-15") == [
        ("api_calls", D("150"), D("1.50")),
        ("support", None, D("30.00")),
    ]
    # The same subscription billed by calendar month: January is 17 of 31 days.
    assert _lines(billed, "inv-acct_calendar-2026-01-01") == [
        ("api_calls", D("100"), D("1.00")),
        ("support", None, D("16.45")),  # 30.00 x 17 / 31 = 16.4516...
    ]
