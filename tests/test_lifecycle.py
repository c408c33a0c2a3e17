"""A billing period lived through: usage lands day by day, the draft invoice is recalculated at
each run's clock, the period closes after its grace period, the final invoice is the last draft,
re-running changes nothing, and late usage becomes an adjustment line or a credit note.

The days run dbt as a Dagster run does (a dbt process with the run's vars); the first close goes
through Dagster's close_billing_period job, as the schedule runs it, and renders the PDFs;
webhooks go to a receiver on 127.0.0.1. Money is compared as exact Decimals throughout.
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from pypdf import PdfReader

from dagster_billing.lib.dbt_args import dbt_build_args, run_environment
from dagster_billing.lib.environ import scoped_environ
from dagster_billing.lib.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    verify_signature,
)
from tests.conftest import FIXTURES, case_warehouse, close_period, query

pytestmark = pytest.mark.slow

CASE = FIXTURES / "lifecycle"
JANUARY = "2026-01-01"
SIM_JAN = "inv-acct_sim-2026-01-01"
SIM_FEB = "inv-acct_sim-2026-02-01"
VOLUME_JAN = "inv-acct_volume-2026-01-01"
D = Decimal


def _day_events(day: date) -> list[dict]:
    """acct_sim: 100 API calls and 1 build a day; acct_volume: 3 builds a day."""
    stamp = day.isoformat()
    events = [
        {
            "uniqueId": f"sim-api-{stamp}",
            "account": "acct_sim",
            "meter": "api.requests",
            "value": 100,
            "ts": f"{stamp}T12:00:00Z",
        },
        {
            "uniqueId": f"sim-build-{stamp}",
            "account": "acct_sim",
            "meter": "builds.completed",
            "value": 1,
            "ts": f"{stamp}T15:00:00Z",
        },
    ]
    events += [
        {
            "uniqueId": f"vol-build-{stamp}-{n}",
            "account": "acct_volume",
            "meter": "builds.completed",
            "value": 1,
            "ts": f"{stamp}T09:0{n}:00Z",
        }
        for n in range(3)
    ]
    return events


def _write(landing: Path, name: str, events: list[dict]) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("".join(json.dumps(event) + "\n" for event in events))


def _write_days(warehouse, first: date, last: date) -> None:
    day = first
    while day <= last:
        _write(warehouse.landing_dir, f"usage_{day.isoformat()}.ndjson", _day_events(day))
        day += timedelta(days=1)


def _land_days(warehouse, first: date, last: date) -> None:
    _write_days(warehouse, first, last)
    _land(warehouse)


def _land(warehouse) -> None:
    """What the raw/usage_events asset does: land every new landing file (by content hash)."""
    from dagster_billing.defs.ingest.landing import land_files, landing_files

    for path in landing_files(warehouse.landing_dir):
        land_files(warehouse.raw_store, [path])


def _dbt(command: str, warehouse, target: Path, **dbt_vars: str) -> None:
    """dbt as a Dagster run invokes it: a dbt process with the run's vars in its environment
    (`build` runs the data tests too; a few intermediate steps only `run`, to keep the test
    quick). One target folder for the module: every step after the first parses only what
    changed."""
    from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
    from dagster_billing.paths import DBT_PROJECT_DIR

    with warehouse.dbt_environment(), scoped_environ(run_environment(dbt_vars)):
        completed = subprocess.run(
            [
                DBT_EXECUTABLE,
                *(dbt_build_args() if command == "build" else [command]),
                "--quiet",
                "--target-path",
                str(target),
            ],
            cwd=DBT_PROJECT_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]


def _invoice(warehouse, invoice_id: str) -> dict:
    columns = (
        "status",
        "invoice_number",
        "subtotal",
        "discount_total",
        "credits_applied",
        "total",
        "total_minor",
        "recalculated_at",
        "cycle_elapsed_percent",
        "estimated_period_charges",
    )
    [row] = query(
        warehouse,
        f"select {', '.join(columns)} from billing.fct_invoices where invoice_id = ?",
        [invoice_id],
    )
    return dict(zip(columns, row, strict=True))


def _lines(warehouse, invoice_id: str) -> list[tuple]:
    return query(
        warehouse,
        "select line_number, line_type, coalesce(charge_id, instrument_id), amount "
        "from billing.fct_invoice_lines where invoice_id = ? order by line_number",
        [invoice_id],
    )


def _ledger(warehouse) -> list[tuple]:
    return query(warehouse, "select * from ledger.ledger_document_lines order by line_id")


@pytest.fixture(scope="module")
def period(tmp_path_factory):
    """Run the period once; each test reads what a step left behind."""
    root = tmp_path_factory.mktemp("lifecycle")
    warehouse = case_warehouse(root, CASE)
    target = root / "target"
    steps: dict[str, object] = {}

    def snapshot(name: str) -> None:
        steps[name] = {
            "sim_jan": _invoice(warehouse, SIM_JAN),
            "volume_jan": _invoice(warehouse, VOLUME_JAN),
            "sim_jan_lines": _lines(warehouse, SIM_JAN),
            "volume_jan_lines": _lines(warehouse, VOLUME_JAN),
        }

    def pdf() -> bytes:
        return (warehouse.exports_dir / "pdf" / "2026-01" / "2026-0001.pdf").read_bytes()

    _land_days(warehouse, date(2026, 1, 1), date(2026, 1, 15))
    _dbt("build", warehouse, target, as_of="2026-01-15T23:00:00")
    snapshot("day_15")

    # The last day's run also asks to finalize January: the grace period has not passed yet.
    _land_days(warehouse, date(2026, 1, 16), date(2026, 1, 31))
    _dbt(
        "build",
        warehouse,
        target,
        as_of="2026-01-31T23:00:00",
        finalize_periods_before="2026-02-01T00:00:00",
    )
    snapshot("day_31")
    steps["ledger_before_close"] = _ledger(warehouse)

    steps["close"] = close_period(warehouse, JANUARY, as_of="2026-02-04T01:00:00")
    snapshot("closed")
    steps["ledger_after_close"] = _ledger(warehouse)
    steps["pdf"] = (warehouse.exports_dir / "pdf" / "2026-01" / "2026-0001.pdf").read_bytes()

    # February usage, then a file arriving on Feb 6 with late January usage: 500 more API calls
    # for acct_sim (bill goes up), 10 more builds for acct_volume (103 builds: volume price drops,
    # bill goes down), and a re-sent January event (a duplicate, days later).
    _write_days(warehouse, date(2026, 2, 1), date(2026, 2, 5))
    late = [
        {
            "uniqueId": "sim-api-late",
            "account": "acct_sim",
            "meter": "api.requests",
            "value": 500,
            "ts": "2026-01-31T18:00:00Z",
        },
        *[
            {
                "uniqueId": f"vol-build-late-{n}",
                "account": "acct_volume",
                "meter": "builds.completed",
                "value": 1,
                "ts": f"2026-01-31T20:0{n}:00Z",
            }
            for n in range(10)
        ],
        {
            "uniqueId": "sim-api-2026-01-03",
            "account": "acct_sim",
            "meter": "api.requests",
            "value": 100,
            "ts": "2026-01-03T12:00:00Z",
        },
    ]
    _write(warehouse.landing_dir, "late_2026-02-06.ndjson", late)
    _land(warehouse)
    _dbt("build", warehouse, target, as_of="2026-02-06T08:00:00")
    snapshot("late")
    steps["sim_feb_lines"] = _lines(warehouse, SIM_FEB)

    # Closing January again (what the daily close schedule does): the final invoices stay as they
    # are, the credit note is issued; a third time books nothing.
    _dbt(
        "build",
        warehouse,
        target,
        as_of="2026-02-06T09:00:00",
        finalize_periods_before="2026-02-01T00:00:00",
    )
    snapshot("closed_again")
    steps["ledger_after_second_close"] = _ledger(warehouse)
    _dbt(
        "run",
        warehouse,
        target,
        as_of="2026-02-06T10:00:00",
        finalize_periods_before="2026-02-01T00:00:00",
    )
    steps["ledger_after_third_close"] = _ledger(warehouse)
    return warehouse, steps


def test_draft_totals_move_with_usage_and_the_clock(period):
    _, steps = period
    day_15, day_31 = steps["day_15"]["sim_jan"], steps["day_31"]["sim_jan"]
    assert [s["status"] for s in (day_15, day_31)] == ["draft"] * 2
    # api: 100 calls/day in the first tier (0.01), beyond 2,000 at 0.005; builds 1/day at 0.50.
    assert [s["subtotal"] for s in (day_15, day_31)] == [D("22.50"), D("41.00")]
    assert [s["total"] for s in (day_15, day_31)] == [D("13.25"), D("27.00")]
    assert [str(s["recalculated_at"]) for s in (day_15, day_31)] == [
        "2026-01-15 23:00:00",
        "2026-01-31 23:00:00",
    ]
    # Jan 15 23:00 is 359 of 744 hours into January: 48.3 %; 22.50 x 744 / 359 = 46.6295... -> 46.63.
    assert (day_15["cycle_elapsed_percent"], day_15["estimated_period_charges"]) == (
        D("48.3"),
        D("46.63"),
    )


def test_credits_and_coupons_reconcile_exactly(period):
    _, steps = period
    lines = steps["day_31"]["sim_jan_lines"]
    assert lines == [
        (1, "charge", "api_calls", D("25.50")),  # 2,000 x 0.01 + 1,100 x 0.005
        (2, "charge", "builds", D("15.50")),  # 31 x 0.50 (volume, under 100)
        (3, "coupon", "c_sim", D("-3.00")),  # 10 % of 41.00 = 4.10, capped at 3.00
        (4, "credit", "g_builds", D("-2.00")),  # priority 1, builds only
        (5, "credit", "g_general", D("-5.00")),  # priority 2, oldest
        (6, "credit", "g_topup", D("-4.00")),  # priority 2, granted Jan 20
    ]
    invoice = steps["day_31"]["sim_jan"]
    assert sum(amount for *_, amount in lines) == invoice["total"] == D("27.00")
    assert (invoice["subtotal"], invoice["discount_total"], invoice["credits_applied"]) == (
        D("41.00"),
        D("-3.00"),
        D("11.00"),
    )
    # Before the top-up was granted (Jan 20) it was not drawn; the expired grant never is.
    assert "g_topup" not in {ref for _, _, ref, _ in steps["day_15"]["sim_jan_lines"]}
    # A fixed coupon larger than the invoice: drawn to zero, the rest carried to February.
    assert steps["day_31"]["volume_jan_lines"] == [
        (1, "charge", "api_calls", D("0.00")),
        (2, "charge", "builds", D("46.50")),
        (3, "coupon", "c_volume", D("-46.50")),
    ]


def test_nothing_is_final_before_the_grace_period_ends(period):
    _, steps = period
    assert steps["ledger_before_close"] == []
    assert steps["day_31"]["sim_jan"]["status"] == "draft"
    assert str(steps["day_31"]["sim_jan"]["recalculated_at"]) == "2026-01-31 23:00:00"


def test_the_final_invoice_is_the_last_draft(period):
    _, steps = period
    assert steps["close"].success
    final, last_draft = steps["closed"]["sim_jan"], steps["day_31"]["sim_jan"]
    assert (final["status"], final["invoice_number"]) == ("final", "2026-0001")
    assert steps["closed"]["volume_jan"]["invoice_number"] == "2026-0002"
    assert steps["closed"]["sim_jan_lines"] == steps["day_31"]["sim_jan_lines"]
    for amount in ("subtotal", "discount_total", "credits_applied", "total", "total_minor"):
        assert final[amount] == last_draft[amount]
    assert final["recalculated_at"] == last_draft["recalculated_at"]


def test_rerunning_the_close_changes_no_final_invoice(period):
    _, steps = period
    booked_first = set(steps["ledger_after_close"])
    booked_again = set(steps["ledger_after_second_close"])
    # Every line booked by the first close is still there, unchanged; only a credit note is new.
    assert booked_first < booked_again
    assert {row[1] for row in booked_again - booked_first} == {"credit_note"}
    assert steps["closed_again"]["sim_jan"] == steps["closed"]["sim_jan"]
    assert steps["closed_again"]["volume_jan"] == steps["closed"]["volume_jan"]
    # And a third time: nothing left to book.
    assert steps["ledger_after_third_close"] == steps["ledger_after_second_close"]


def test_late_usage_never_changes_a_final_invoice(period):
    _, steps = period
    assert steps["late"]["sim_jan"] == steps["closed"]["sim_jan"]
    assert steps["late"]["volume_jan"] == steps["closed"]["volume_jan"]
    assert steps["late"]["sim_jan_lines"] == steps["closed"]["sim_jan_lines"]


def test_late_usage_that_raises_a_bill_is_an_adjustment_on_the_next_invoice(period):
    warehouse, steps = period
    # 500 more calls in the 0.005 tier: +2.50, billed on February's draft.
    assert (3, "adjustment", "api_calls", D("2.50")) in steps["sim_feb_lines"]
    [(description, corrects)] = query(
        warehouse,
        "select description, corrects_invoice_id from billing.fct_invoice_lines "
        "where invoice_id = ? and line_type = 'adjustment'",
        [SIM_FEB],
    )
    assert (description, corrects) == ("Late usage for invoice 2026-0001: API calls", SIM_JAN)


def test_late_usage_that_lowers_a_bill_is_a_credit_note(period):
    warehouse, _ = period
    # 103 builds: all at 0.25 (volume) = 25.75 instead of 46.50 billed: credit 20.75.
    notes = query(
        warehouse,
        "select credit_note_number, invoice_id, account_id, currency, minor_units, reason, total, "
        "total_minor from billing.fct_credit_notes",
    )
    assert notes == [
        (
            "CN-2026-0001",
            VOLUME_JAN,
            "acct_volume",
            "USD",
            2,
            "late_usage_correction",
            D("20.75"),
            2075,
        )
    ]


def test_a_duplicate_arriving_days_later_is_still_a_duplicate(period):
    warehouse, _ = period
    outcomes = query(
        warehouse,
        "select outcome from billing.fct_usage_event_outcomes where unique_id = 'sim-api-2026-01-03' "
        "order by file_seq",
    )
    assert outcomes == [("accepted",), ("duplicate",)]


def test_credit_balances_roll_forward(period):
    warehouse, _ = period
    balances = query(
        warehouse,
        "select month_start, opening_balance, granted, drawn, expired, closing_balance "
        "from billing.fct_credit_balances where account_id = 'acct_sim' order by month_start",
    )
    assert balances == [
        (date(2025, 12, 1), D("0"), D("3.00"), D("0"), D("0"), D("3.00")),
        (date(2026, 1, 1), D("3.00"), D("11.00"), D("11.00"), D("3.00"), D("0.00")),
    ]


def test_threshold_alert_fires_once_at_the_crossing_hour(period):
    warehouse, _ = period
    # 85 % of 3,000 calls = 2,550: reached by the noon event of Jan 26 (2,600 calls).
    alerts = query(
        warehouse,
        "select alert_id, crossed_hour, usage_at_crossing from billing.fct_usage_alerts",
    )
    assert [(a, str(h), q) for a, h, q in alerts] == [
        ("t_sim_api:2026-01-01", "2026-01-26 12:00:00", D("2600"))
    ]


def test_final_invoice_pdf_is_itemized(period):
    _, steps = period
    pages = PdfReader(io.BytesIO(steps["pdf"])).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())
    for expected in (
        "Invoice 2026-0001",
        "Simulation Ltd.",
        "API calls",
        "Tier 1: 0 to 2,000",
        "Tier 2: 2,000 to unbounded",
        "10% off (max 3.00)",
        "-$3.00",
        "Build credits",
        "Subtotal $41.00",
        "Prepaid credits applied -$11.00",
        "Total due $27.00",
    ):
        assert expected in text, expected


class _Receiver:
    """A webhook receiver on 127.0.0.1: verifies every signature with its secret, deduplicates
    on the event id, and answers 503 to the first attempt of one chosen event."""

    def __init__(self, secret: str, flaky_event_id: str | None = None) -> None:
        self.attempts: dict[str, int] = {}
        self.accepted: dict[str, dict] = {}
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers[EVENT_ID_HEADER]
                receiver.attempts[event_id] = receiver.attempts.get(event_id, 0) + 1
                try:
                    verify_signature(
                        secret, self.headers[SIGNATURE_HEADER], body, now=int(time.time())
                    )
                except SignatureError:
                    receiver.rejected += 1
                    status = 401
                else:
                    if event_id == flaky_event_id and receiver.attempts[event_id] == 1:
                        status = 503
                    else:
                        receiver.accepted.setdefault(event_id, json.loads(body))
                        status = 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> _Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _deliver(warehouse, url: str, secret: str) -> dg.ExecuteInProcessResult:
    from dagster_billing.defs.invoicing.webhooks import WebhookEndpoint, webhook_deliveries

    return dg.materialize(
        [webhook_deliveries],
        resources={
            "warehouse": warehouse,
            "webhooks": WebhookEndpoint(url=url, secret=secret, backoff_seconds=0.01),
        },
        raise_on_error=False,
    )


def test_webhooks_are_signed_retried_and_delivered_once(period):
    warehouse, _ = period
    finalized = f"invoice.finalized:{SIM_JAN}"

    with _Receiver("wrong-secret") as impostor:
        assert not _deliver(warehouse, impostor.url, "s3cret").success
    assert impostor.accepted == {} and impostor.rejected > 0

    with _Receiver("s3cret", flaky_event_id=finalized) as receiver:
        assert _deliver(warehouse, receiver.url, "s3cret").success
        assert _deliver(warehouse, receiver.url, "s3cret").success

    outbox = {
        event_id
        for (event_id,) in query(warehouse, "select event_id from billing.fct_webhook_events")
    }
    assert set(receiver.accepted) == outbox
    # Each event was sent once, except the one that got a 503 and was retried.
    assert receiver.attempts[finalized] == 2
    assert all(n == 1 for event_id, n in receiver.attempts.items() if event_id != finalized)
    assert receiver.accepted[finalized]["data"] == {
        "account_id": "acct_sim",
        "currency": "USD",
        "invoice_id": SIM_JAN,
        "invoice_number": "2026-0001",
        "period_end": "2026-02-01",
        "period_start": "2026-01-01",
        "status": "final",
        "total": "27.0000",
        "total_minor": 2700,
    }
    types = sorted(event["type"] for event in receiver.accepted.values())
    assert types.count("invoice.finalized") == 2
    assert types.count("usage.threshold_crossed") == 1
    assert types.count("invoice.draft_updated") == 2  # February drafts of both accounts
