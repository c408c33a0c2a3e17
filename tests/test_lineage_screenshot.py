"""The Dagster UI tells the story the docs tell: the lineage page shows the data-flow groups, and
an asset's checks say in words what they assert. Runs dagster-webserver on a free port against a
temporary instance and looks at it in headless Chromium; screenshots go to tests/artifacts/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from dagster_billing.defs.groups import FLOW
from dagster_billing.paths import REPO_ROOT
from tests.browser import chromium_page, chromium_path, free_port, screenshot, wait_for_http

UI_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory):
    chromium_path()
    home = tmp_path_factory.mktemp("dagster-home")
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    environment = os.environ | {
        "DAGSTER_HOME": str(home),
        "BILLING_DATA_DIR": str(home / "data"),
    }
    log = (home / "webserver.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("-m", "dagster_billing.definitions"),
        ],
        cwd=REPO_ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextmanager
def dagster_page():
    """A Chromium page on which the UI's first-visit community dialog is already dismissed (the
    UI keeps that in localStorage under `communityNux`)."""
    with chromium_page() as page:
        page.add_init_script("window.localStorage.setItem('communityNux', '1')")
        yield page


@pytest.mark.slow
def test_lineage_page_shows_the_data_flow_groups(dagster_ui):
    with dagster_page() as page:
        page.goto(f"{dagster_ui}/asset-groups", timeout=UI_TIMEOUT_MS)
        for group in FLOW:
            page.get_by_text(group, exact=True).first.wait_for(timeout=UI_TIMEOUT_MS)
        page.wait_for_timeout(1_000)
        path = screenshot(page, "lineage")
        listed = set(page.locator("body").inner_text().split())
    assert set(FLOW) <= listed
    # The old names that did not match the data flow are gone.
    assert not {"ingest", "sync", "pricing", "webhooks"} & listed
    assert path.stat().st_size > 10_000


@pytest.mark.slow
def test_asset_checks_are_described_in_the_ui(dagster_ui):
    checks = f"{dagster_ui}/assets/billing/fct_invoices?view=checks&checkDetail="
    with dagster_page() as page:
        # A singular dbt test: its description is the comment its SQL opens with.
        page.goto(checks + "assert_invoice_totals_equal_lines", timeout=UI_TIMEOUT_MS)
        page.get_by_text(
            "Every invoice total equals the sum of its rounded lines, to the minor unit."
        ).first.wait_for(timeout=UI_TIMEOUT_MS)
        page.wait_for_timeout(1_000)
        screenshot(page, "checks")
        # A generic dbt test: a sentence per rule of the table's column rules (decision 108).
        page.goto(checks + "table_rules_fct_invoices", timeout=UI_TIMEOUT_MS)
        page.get_by_text("is unique.").first.wait_for(timeout=UI_TIMEOUT_MS)
        text = page.locator("body").inner_text()
    assert "invoice_number is unique." in text
    assert "No description provided" not in text
