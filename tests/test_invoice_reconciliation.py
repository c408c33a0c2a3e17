"""Proration, a minimum commitment, a coupon and prepaid credits on one final invoice: every line
rounded once (half-up), the lines sum to the total to the cent, and the final invoice is the
last draft."""

from __future__ import annotations

import shutil
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
CASE = FIXTURES / "reconciliation"
INVOICE = "inv-acct_recon-2026-01-01"
D = Decimal

# Subscription from Jan 11: 21 of January's 31 days are billed, the start day in full.
EXPECTED_LINES = [
    ("charge", "api_calls", D("10.01")),  # 1,000.5 calls x 0.01 = 10.005, half-up
    ("recurring", "platform", D("21.00")),  # January: 31.00 x 21 / 31
    ("recurring", "platform", D("31.00")),  # February, in advance
    # 100.00 x 21 / 31 = 67.74, less January's 31.01 (February's fee counts for February)
    ("commitment_true_up", None, D("36.73")),
    ("coupon", "c_recon", D("-9.87")),  # 10 % of 98.74 = 9.874
    ("credit", "g_recon", D("-50.00")),  # the whole grant: 38.87 is left to pay
]


@pytest.fixture(scope="module")
def closed(tmp_path_factory):
    root = tmp_path_factory.mktemp("reconciliation")
    warehouse = case_warehouse(root, CASE)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage.ndjson", warehouse.landing_dir)
    assert run_pipeline(warehouse, as_of="2026-02-01T12:00:00").success
    draft = _invoice(warehouse), _lines(warehouse)
    assert close_period(warehouse, "2026-01-01", as_of="2026-02-04T01:00:00").success
    return warehouse, draft


def _invoice(warehouse) -> tuple:
    [row] = query(
        warehouse,
        "select status, subtotal, discount_total, credits_applied, total, total_minor "
        "from billing.fct_invoices where invoice_id = ?",
        [INVOICE],
    )
    return row


def _lines(warehouse) -> list[tuple]:
    return query(
        warehouse,
        "select line_type, coalesce(charge_id, instrument_id), amount "
        "from billing.fct_invoice_lines where invoice_id = ? order by line_number",
        [INVOICE],
    )


def test_every_line_is_rounded_once_and_in_order(closed):
    warehouse, _ = closed
    assert _lines(warehouse) == EXPECTED_LINES


def test_lines_sum_to_the_total_to_the_cent(closed):
    warehouse, _ = closed
    status, subtotal, discounts, credits, total, total_minor = _invoice(warehouse)
    assert status == "final"
    assert (subtotal, discounts, credits) == (D("98.74"), D("-9.87"), D("50.00"))
    assert total == sum(amount for *_, amount in EXPECTED_LINES) == D("38.87")
    assert total_minor == 3887


def test_the_final_invoice_is_the_last_draft(closed):
    warehouse, (draft_invoice, draft_lines) = closed
    assert draft_invoice[0] == "draft"
    assert draft_lines == _lines(warehouse)
    assert draft_invoice[1:] == _invoice(warehouse)[1:]
