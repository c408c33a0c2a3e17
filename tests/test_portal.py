"""The customer portal on ONE built warehouse (tests/fixtures/portal: three accounts, USD and JPY,
January final with its PDF, February open at the clock 2026-02-14T12:00, a commitment true-up,
thresholds crossed, prepaid credit, a meter priced per model and one billed over regions):

- access, over HTTP in process: a link opens a session for its account only; tampered, expired,
  re-signed, cross-purpose and missing tokens get 401/403 pages without data; another account's
  documents answer 404 like unknown ones; no secret or no snapshot yet answer 503; pages answer
  while another process holds the warehouse (they read the snapshot only);
- in a real browser (Debian's chromium, Playwright), through `billing serve`: every page loads,
  every number on it equals the SQL on the published snapshot formatted for the page's locale
  (en-US, and de-DE once), the chart images load with their alt text, the PDF download is the
  invoice (pypdf), and each page is screenshotted into tests/artifacts/.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from dagster_billing.analytics import open_snapshot
from dagster_billing.api.app import create_app
from dagster_billing.api.process import ServerProcess
from dagster_billing.api.settings import ApiSettings
from dagster_billing.cli import main
from dagster_billing.portal.formatting import Formatter
from dagster_billing.portal.links import (
    SECRET_ENV,
    SESSION_COOKIE,
    Grant,
    link_token,
    session_token,
)
from tests.conftest import FIXTURES, case_warehouse, close_period, run_pipeline

CASE = FIXTURES / "portal"
AS_OF = "2026-02-14T12:00:00"
SECRET = "portal-test-secret-" + "x" * 32
ALPHA_JAN = "inv-acct_alpha-2026-01-01"
ALPHA_FEB = "inv-acct_alpha-2026-02-01"
BETA_JAN = "inv-acct_beta-2026-01-01"
PAGES = ("/portal/", "/portal/trends", "/portal/invoices", "/portal/credits", "/portal/alerts")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January and February landed, the pipeline run and January closed at the clock."""
    root = tmp_path_factory.mktemp("portal")
    warehouse = case_warehouse(root, CASE)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage" / "events.ndjson", warehouse.landing_dir)
    run_pipeline(warehouse, as_of=AS_OF)
    close_period(warehouse, "2026-01-01", as_of=AS_OF)
    return warehouse.root


@pytest.fixture(scope="module")
def secret_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, SECRET)
        yield


@pytest.fixture
def client(data_dir: Path, secret_env) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(data_dir=data_dir))) as test_client:
        yield test_client


def _dirs(data_dir: Path) -> list[str]:
    """`billing` options for the case: its data directory and the seeds it was built from."""
    return ["--data-dir", str(data_dir), "--seeds", str(data_dir.parent / "seeds")]


def _path(link: str) -> str:
    return link[link.index("/portal/") :]


def _open(client: TestClient, token: str):
    return client.get(f"/portal/s/{token}", follow_redirects=False)


def _signed_in(client: TestClient, account: str) -> TestClient:
    response = _open(client, link_token(SECRET, account, timedelta(hours=1)))
    assert (response.status_code, response.headers["location"]) == (303, "/portal/")
    return client


def _reads(text: str, *names: str) -> list[str]:
    return [name for name in names if name in text]


# ---- access -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_link_opens_a_session_for_its_account_only(client):
    response = _open(client, link_token(SECRET, "acct_alpha", timedelta(days=7)))
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/portal" in cookie and "SameSite=lax" in cookie
    assert response.headers["referrer-policy"] == "no-referrer"
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Alpha Inc." in page.text
        assert _reads(page.text, "Beta LLC", "acct_beta", "Kappa", BETA_JAN) == [], path
        assert page.headers["cache-control"] == "private, no-store"
        assert page.headers["server-timing"].startswith("app;dur=")
    assert client.get(f"/portal/invoices/{ALPHA_JAN}").status_code == 200
    assert client.get(f"/portal/invoices/{ALPHA_JAN}/pdf").content.startswith(b"%PDF")
    # Another account's documents look exactly like documents that do not exist.
    for path in (
        f"/portal/invoices/{BETA_JAN}",
        f"/portal/invoices/{BETA_JAN}/pdf",
        f"/portal/invoices/{BETA_JAN}/csv",
        f"/portal/invoices/{BETA_JAN}/usage.csv",
        "/portal/invoices/inv-nobody-2026-01-01",
        "/portal/credit-notes/CN-2026-0001/csv",
        "/portal/credit-notes/CN-2026-0001/pdf",
        "/portal/charts/usage-nope.svg",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert _reads(answer.text, "Beta", "90.00", "acct_beta") == [], path
    # The account comes from the session, never from the address: no parameter changes it.
    assert "Beta LLC" not in client.get("/portal/?account_id=acct_beta").text


@pytest.mark.slow
def test_pages_answer_while_another_process_holds_the_warehouse(client, data_dir):
    """The portal reads the published snapshot only: a writer on warehouse.duckdb (a pipeline run)
    does not stop it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; connection = duckdb.connect(sys.argv[1]); print('held',"
            " flush=True); time.sleep(120)",
            str(data_dir / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        _signed_in(client, "acct_alpha")
        for path in (*PAGES, f"/portal/invoices/{ALPHA_JAN}", f"/portal/invoices/{ALPHA_JAN}/csv"):
            assert client.get(path).status_code == 200, path
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_tampered_expired_and_cross_purpose_tokens_get_no_data(client):
    good = link_token(SECRET, "acct_alpha", timedelta(days=7))
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(claims | {"sub": "acct_beta"}).encode())
        .rstrip(b"=")
        .decode()
    )
    grant = Grant("acct_alpha", int(time.time()) + 3600)
    cases = {
        "account swapped, signature kept": (f"{header}.{forged_payload}.{signature}", 403),
        "signature altered": (f"{header}.{payload}.{signature[:-4]}AAAA", 403),
        "signed with another secret": (
            link_token("another-secret-" + "y" * 32, "acct_alpha", timedelta(days=1)),
            403,
        ),
        "a session token used as a link": (session_token(SECRET, grant), 403),
        "not a token": ("hello", 403),
        "expired": (
            link_token(SECRET, "acct_alpha", timedelta(days=1), now=int(time.time()) - 90000),
            401,
        ),
    }
    for name, (token, status) in cases.items():
        client.cookies.clear()
        response = _open(client, token)
        assert response.status_code == status, name
        assert f"{SESSION_COOKIE}=ey" not in response.headers.get("set-cookie", ""), name
        assert _reads(response.text, "Alpha", "Beta", "30.00", "50.00") == [], name

    sessions = {
        "no session": (None, 401),
        "a link token used as the session": (good, 403),
        "expired session": (
            session_token(SECRET, Grant("acct_alpha", int(time.time()) - 10), now=0),
            401,
        ),
        "session for an account, altered": (session_token(SECRET, grant)[:-3] + "abc", 403),
    }
    for name, (cookie, status) in sessions.items():
        client.cookies.clear()
        if cookie:
            client.cookies.set(SESSION_COOKIE, cookie, path="/portal")
        for path in (*PAGES, f"/portal/invoices/{ALPHA_JAN}/pdf"):
            response = client.get(path)
            assert response.status_code == status, (name, path)
            assert _reads(response.text, "Alpha", "30.00", "50.00") == [], (name, path)


@pytest.mark.slow
def test_without_a_secret_or_a_snapshot_the_portal_says_why(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with TestClient(create_app(ApiSettings(data_dir=data_dir))) as client:
        response = _open(client, link_token(SECRET, "acct_alpha", timedelta(days=1)))
        assert response.status_code == 503
        assert SECRET_ENV in response.text
    result = CliRunner().invoke(main, ["portal", "link", "acct_alpha", *_dirs(data_dir)])
    assert result.exit_code == 1 and SECRET_ENV in result.output

    monkeypatch.setenv(SECRET_ENV, SECRET)
    empty = tmp_path / "empty"
    with TestClient(create_app(ApiSettings(data_dir=empty))) as client:
        _signed_in(client, "acct_alpha")
        response = client.get("/portal/")
        assert response.status_code == 503 and "first run" in response.text


@pytest.mark.slow
def test_billing_portal_link_prints_a_link_that_opens_the_account(client, data_dir):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["portal", "link", "acct_kappa", "--expires", "2h", *_dirs(data_dir)],
        env={SECRET_ENV: SECRET},
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("http://127.0.0.1:8000/portal/s/")
    assert client.get(_path(link)).status_code == 200  # redirected to the page
    page = client.get("/portal/")
    assert "Kappa K.K." in page.text and "￥1,502" not in page.text and "¥1,502" in page.text
    for bad in (["acct_nobody"], ["acct_kappa", "--expires", "91d"]):
        result = runner.invoke(
            main, ["portal", "link", *bad, *_dirs(data_dir)], env={SECRET_ENV: SECRET}
        )
        assert result.exit_code == 1, bad


@pytest.mark.slow
def test_the_run_summary_ends_with_a_portal_link(data_dir, tmp_path, monkeypatch):
    """`make demo` ends with `billing summary`: one link, signed with a local secret file it
    creates (and says so) when BILLING_PORTAL_SECRET is not set."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy, symlinks=True)
    result = CliRunner().invoke(main, ["summary", "--data-dir", str(copy)])
    assert result.exit_code == 0, result.output
    *_, heading, link = result.output.strip().splitlines()
    assert (
        heading.startswith("Customer portal of acct_")
        and str(copy / "portal" / "secret") in heading
    )
    assert (copy / "portal" / "secret").stat().st_mode & 0o777 == 0o600
    with TestClient(create_app(ApiSettings(data_dir=copy))) as client:
        assert client.get(_path(link.strip()), follow_redirects=False).status_code == 303
        assert client.get("/portal/invoices").status_code == 200


# ---- in a browser -----------------------------------------------------------------------------


def _sql(data_dir: Path, sql: str, params: list | None = None) -> list[dict]:
    with open_snapshot(data_dir) as connection:
        cursor = connection.execute(sql, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _cells(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def _check_usage(page, data_dir: Path, fmt: Formatter) -> None:
    [invoice] = _sql(
        data_dir, "select * from billing.fct_invoices where invoice_id = ?", [ALPHA_FEB]
    )
    money = lambda amount: fmt.money(amount, "USD", 2)  # noqa: E731
    assert invoice["status"] == "draft"
    summary = page.get_by_test_id("summary")
    for field in ("subtotal", "estimated_period_charges", "total"):
        assert summary.locator(f"[data-field={field}]").inner_text() == money(invoice[field])
    assert summary.locator("[data-field=cycle_elapsed_percent]").inner_text() == fmt.percent(
        invoice["cycle_elapsed_percent"]
    )
    lines = _sql(
        data_dir,
        """
        select lines.invoice_line_id, lines.meter_code, lines.dimension_value, lines.quantity,
               lines.amount, rated.event_count
        from billing.fct_invoice_lines as lines
        left join billing.fct_rated_usage as rated using (invoice_line_id)
        where lines.invoice_id = ? and lines.line_type = 'charge'
        """,
        [ALPHA_FEB],
    )
    assert {line["dimension_value"] for line in lines} >= {"gpt-4o", "llama-3", "*"}
    table = page.get_by_test_id("usage-lines")
    assert table.locator("tbody tr[data-line-id]").count() == len(lines)
    for line in lines:
        cells = _cells(table, f"tr[data-line-id='{line['invoice_line_id']}'] > *")
        assert cells[0] == line["meter_code"]
        assert cells[3:5] == [fmt.quantity(line["event_count"]), fmt.quantity(line["quantity"])]
        assert cells[6] == money(line["amount"])
    # GPU seconds are billed as one line; its regions are listed under it.
    regions = _sql(
        data_dir,
        "select dimension_value, sum(sum_value) as quantity from billing.fct_usage_daily_by_dimension"
        " where account_id = 'acct_alpha' and period_start = '2026-02-01'"
        " and meter_code = 'compute.gpu_seconds' group by all",
    )
    for region in regions:
        row = table.locator(f"tr[data-dimension='compute.gpu_seconds:{region['dimension_value']}']")
        assert _cells(row, "td")[3] == fmt.quantity(region["quantity"])
    others = _sql(
        data_dir,
        "select line_number, amount from billing.fct_invoice_lines"
        " where invoice_id = ? and line_type != 'charge' order by line_number",
        [ALPHA_FEB],
    )
    assert [row[-1] for row in _rows(page.get_by_test_id("other-lines"))] == [
        money(row["amount"]) for row in others
    ]


def _rows(table) -> list[list[str]]:
    return [_cells(row, "th, td") for row in table.locator("tbody tr").all()]


def _check_trends(page, data_dir: Path, fmt: Formatter) -> None:
    daily = _sql(
        data_dir,
        """
        select meter_code, usage_day, sum_value from billing.fct_usage_daily
        where account_id = 'acct_alpha' and usage_day between '2026-01-16' and '2026-02-14'
        """,
    )
    tables = page.get_by_test_id("trend-table")
    assert sorted(tables.evaluate_all("ts => ts.map(t => t.dataset.meter)")) == sorted(
        {row["meter_code"] for row in daily}
    )
    for meter in {row["meter_code"] for row in daily}:
        table = page.locator(f"table[data-testid=trend-table][data-meter='{meter}']")
        assert table.locator("tbody tr").count() == 30
        values = {
            row["usage_day"].isoformat(): row["sum_value"]
            for row in daily
            if row["meter_code"] == meter
        }
        for day, value in values.items():
            cell = table.locator(f"tr[data-day='{day}'] td")
            assert cell.text_content().strip() == fmt.quantity(value), (meter, day)
        assert table.locator("td").evaluate_all(
            "tds => tds.filter(td => td.textContent.trim() !== '0').length"
        ) == sum(1 for value in values.values() if value != 0)
    images = page.get_by_test_id("chart")
    assert images.count() == len({row["meter_code"] for row in daily}) + 1
    for image in images.all():
        image.scroll_into_view_if_needed()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert len(image.get_attribute("alt")) > 40
    charges = _sql(
        data_dir,
        """
        select meter_code,
               sum(amount) filter (where invoice_id = ?) as current_amount,
               sum(amount) filter (where invoice_id = ?) as previous_amount
        from billing.fct_invoice_lines where invoice_id in (?, ?) and line_type = 'charge'
        group by meter_code order by meter_code
        """,
        [ALPHA_FEB, ALPHA_JAN, ALPHA_FEB, ALPHA_JAN],
    )
    assert _rows(page.get_by_test_id("compare-charges")) == [
        [
            row["meter_code"],
            fmt.money(row["current_amount"], "USD"),
            fmt.money(row["previous_amount"], "USD"),
        ]
        for row in charges
    ]
    # The first 14 days of February (through the clock's day) against January's first 14.
    usage = _sql(
        data_dir,
        """
        select meter_code,
               coalesce(sum(sum_value) filter (where usage_day between '2026-02-01' and '2026-02-14'), 0),
               coalesce(sum(sum_value) filter (where usage_day between '2026-01-01' and '2026-01-14'), 0)
        from billing.fct_usage_daily where account_id = 'acct_alpha'
        group by meter_code order by meter_code
        """,
    )
    assert [row[2:] for row in _rows(page.get_by_test_id("compare-usage"))] == [
        [fmt.quantity(row[k]) for k in list(row)[1:]] for row in usage
    ]


def _check_invoices(page, data_dir: Path, fmt: Formatter) -> None:
    invoices = _sql(
        data_dir,
        "select invoice_id, invoice_number, subtotal, discount_total, credits_applied, total"
        " from billing.fct_invoices where account_id = 'acct_alpha' order by period_start desc",
    )
    rows = _rows(page.get_by_test_id("invoices"))
    assert [row[1] for row in rows] == [i["invoice_number"] or "—" for i in invoices]
    assert [row[3:7] for row in rows] == [
        [fmt.money(i[k], "USD") for k in ("subtotal", "discount_total", "credits_applied", "total")]
        for i in invoices
    ]
    assert page.get_by_test_id("no-credit-notes").is_visible()


def _check_credits(page, data_dir: Path, fmt: Formatter) -> None:
    movements = _sql(
        data_dir,
        """
        select movement_type || case when status = 'draft' then ' (provisional)' else '' end
                   as movement, amount, account_balance
        from billing.fct_credit_movements where account_id = 'acct_alpha'
        """,
    )
    rows = _rows(page.get_by_test_id("movements"))
    assert sorted((row[2], row[4], row[5]) for row in rows) == sorted(
        (m["movement"], fmt.money(m["amount"], "USD"), fmt.money(m["account_balance"], "USD"))
        for m in movements
    )
    [latest] = _sql(
        data_dir,
        "select closing_balance from billing.fct_credit_balances where account_id = 'acct_alpha'"
        " order by month_start desc limit 1",
    )
    balance = page.get_by_test_id("balances").locator("[data-field=closing_balance]")
    assert balance.inner_text() == fmt.money(latest["closing_balance"], "USD")


def _check_alerts(page, data_dir: Path, fmt: Formatter) -> None:
    alerts = _sql(
        data_dir,
        "select alert_id, limit_quantity, alert_quantity, usage_at_crossing"
        " from billing.fct_usage_alerts where account_id = 'acct_alpha'"
        " order by period_start desc, crossed_hour desc, alert_id",
    )
    assert len(alerts) == 2  # January and February each crossed 80 % of 2,000 calls
    rows = _rows(page.get_by_test_id("thresholds"))
    assert [[row[3], row[4], row[6]] for row in rows] == [
        [fmt.quantity(a[k]) for k in ("limit_quantity", "alert_quantity", "usage_at_crossing")]
        for a in alerts
    ]
    [true_up] = _sql(
        data_dir,
        "select base_amount, amount from billing.fct_invoice_lines"
        " where invoice_id = ? and line_type = 'commitment_true_up'",
        [ALPHA_FEB],
    )
    box = page.get_by_test_id("true-up")
    assert box.locator("[data-field=commitment]").inner_text() == fmt.money(
        true_up["base_amount"], "USD"
    )
    assert box.locator("[data-field=true_up]").inner_text() == fmt.money(true_up["amount"], "USD")
    quotas = _sql(
        data_dir,
        "select meter_code, limit_quantity, used_quantity, remaining_quantity, overage_quantity"
        " from billing.fct_usage_quotas where account_id = 'acct_alpha'"
        " and period_start = '2026-02-01' order by meter_code",
    )
    rows = _rows(page.get_by_test_id("quotas"))
    assert [row[0] for row in rows] == [q["meter_code"] for q in quotas]
    assert [row[2:6] for row in rows] == [
        [
            fmt.quantity(q[k])
            for k in ("limit_quantity", "used_quantity", "remaining_quantity", "overage_quantity")
        ]
        for q in quotas
    ]
    # 1,700 calls by Feb 14 against a blocking quota of 1,500; 2,000 of 1,000,000 tokens.
    assert [row[1] for row in rows] == ["usage stops", "overage is billed"]
    assert [row[6] for row in rows] == ["blocked", "within the limit"]
    assert quotas[0]["overage_quantity"] == Decimal("200")
    # February's crossing, the exhausted quota and the true-up.
    assert page.locator("nav .badge").inner_text() == "3"


CHECKS = {
    "usage": ("/portal/", _check_usage),
    "trends": ("/portal/trends", _check_trends),
    "invoices": ("/portal/invoices", _check_invoices),
    "credits": ("/portal/credits", _check_credits),
    "alerts": ("/portal/alerts", _check_alerts),
}


@pytest.fixture(scope="module")
def server(data_dir: Path, secret_env) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir, env={SECRET_ENV: SECRET}).start()
    yield process
    process.stop()


@pytest.mark.slow
def test_every_page_in_a_browser_shows_the_snapshot_exactly(server, data_dir, tmp_path):
    from pypdf import PdfReader

    from tests.browser import chromium_page, screenshot

    result = CliRunner().invoke(
        main,
        ["portal", "link", "acct_alpha", *_dirs(data_dir), "--base-url", server.url],
        env={SECRET_ENV: SECRET},
    )
    fmt = Formatter("en_US")
    with chromium_page(1280, 900, locale="en-US", accept_downloads=True) as page:
        page.goto(result.output.strip())
        assert page.url == f"{server.url}/portal/"
        for name, (path, check) in CHECKS.items():
            page.goto(server.url + path)
            assert page.get_by_test_id("account-name").inner_text() == "Alpha Inc."
            check(page, data_dir, fmt)
            screenshot(page, f"portal-{name}")

        page.goto(f"{server.url}/portal/invoices")
        page.locator(f"tr[data-invoice-id='{ALPHA_JAN}'] th a").click()
        page.wait_for_url(f"**/portal/invoices/{ALPHA_JAN}")
        screenshot(page, "portal-invoice")
        [invoice] = _sql(
            data_dir, "select * from billing.fct_invoices where invoice_id = ?", [ALPHA_JAN]
        )
        with page.expect_download() as download:
            page.get_by_test_id("pdf").click()
        pdf = tmp_path / download.value.suggested_filename
        download.value.save_as(pdf)
        text = "\n".join(page_.extract_text() for page_ in PdfReader(pdf).pages)
        assert invoice["invoice_number"] in text and f"{invoice['total']:.2f}" in text

    # The reader's locale: German number and date formats, the same exact amounts.
    with chromium_page(1280, 900, locale="de-DE") as page:
        page.goto(result.output.strip())
        _check_usage(page, data_dir, Formatter("de_DE"))
        assert "Feb." in page.get_by_test_id("summary").locator("[data-field=period]").inner_text()
        screenshot(page, "portal-usage-de")


def test_money_is_formatted_from_exact_rounded_values_only():
    fmt = Formatter("en_US")
    assert fmt.money(Decimal("1502.0000"), "JPY", 0) == "¥1,502"
    assert fmt.money(Decimal("12.3450"), "KWD", 3) == "KWD12.345"
    assert Formatter("de_DE").money(Decimal("1234.5000"), "EUR", 2) == "1.234,50\xa0€"
    with pytest.raises(ValueError, match="not rounded"):
        fmt.money(Decimal("0.125"), "USD", 2)  # babel would print $0.12 (half-even)
