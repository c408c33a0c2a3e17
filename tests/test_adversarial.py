"""Inputs nobody on the team wrote (issue 17), one test per finding: nothing acknowledged is lost,
no line or file blocks the others, every refusal names its file, line or item and says why.

Landing is exercised through the `raw/*` asset (no dbt: seconds per test); one pipeline run over
every adversarial fixture plus events sent to the API shows the rest still lands and is billed,
`raw = accepted + duplicates + quarantined` holds and the acknowledged-events check is green.
The killed-run test is tests/test_run_monitoring.py.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import httpx
import orjson
import pytest
from click.testing import CliRunner

from dagster_billing.api.process import ServerProcess
from dagster_billing.cli import main
from dagster_billing.defs.ingest import assets as ingest_assets
from dagster_billing.defs.ingest import landing, ledger
from dagster_billing.defs.ingest.assets import acknowledged_events_landed, raw_usage
from tests.api_helpers import TS, create_key, event, landed_lines
from tests.conftest import FIXTURES, make_warehouse, query, query_raw, run_pipeline

ADVERSARIAL = FIXTURES / "adversarial"

# (file, line) -> quarantine reason, None when the row is valid. Line 0 is the whole file.
EXPECTED = {
    ("deep_properties.ndjson", 1): None,
    ("deep_properties.ndjson", 2): "invalid_properties",  # nested 300 deep
    ("deep_properties.ndjson", 3): "malformed_json",  # nested 5000 deep
    ("deep_properties.ndjson", 4): "malformed_json",  # a value nested 300 deep
    ("deep_properties.ndjson", 5): None,
    ("not_utf8.ndjson", 1): None,
    ("not_utf8.ndjson", 2): "invalid_encoding",
    ("not_utf8.ndjson", 3): None,
    ("big_field.csv", 2): None,
    ("big_field.csv", 3): "field_too_large",
    ("big_field.csv", 4): None,
    ("not_utf8.csv", 2): "invalid_encoding",
    ("not_utf8.csv", 3): "invalid_encoding",
    ("not_utf8.csv", 4): None,
    ("excel_bom.csv", 2): None,
    ("excel_bom.csv", 3): None,
    ("bom.ndjson", 1): None,
    ("bom.ndjson", 2): None,
    ("utf16.csv", 0): "invalid_encoding",
    ("truncated.csv", 2): None,  # line 3 has no newline yet: not landed
    ("edge_values.ndjson", 1): None,  # 23:59:60 stays in its second
    ("edge_values.ndjson", 2): "timestamp_before_floor",
    ("edge_values.ndjson", 3): "value_too_large",
    ("edge_values.ndjson", 4): "missing_meter",
    ("edge_values.ndjson", 5): "missing_account",
    ("edge_values.ndjson", 6): "missing_value",
    ("repeated_header.csv", 2): None,
    ("repeated_header.csv", 3): "repeated_header",
    ("repeated_header.csv", 4): "missing_meter",
    ("repeated_header.csv", 5): None,
    ("formula.ndjson", 1): None,
    ("formula.ndjson", 2): None,
}


def copy_fixtures(warehouse, *names: str) -> None:
    """Into the landing directory, keeping their (old) modification times: settled files."""
    warehouse.landing_dir.mkdir(parents=True, exist_ok=True)
    for name in names or sorted(path.name for path in ADVERSARIAL.iterdir()):
        shutil.copy2(ADVERSARIAL / name, warehouse.landing_dir / name)


def land(warehouse) -> dg.ExecuteInProcessResult:
    """The raw/* asset with its checks, as a run lands files."""
    return dg.materialize(
        [raw_usage, acknowledged_events_landed],
        resources={"warehouse": warehouse},
        instance=dg.DagsterInstance.ephemeral(),
    )


def raw_reasons(warehouse) -> dict[tuple[str, int], str | None]:
    rows = query_raw(
        warehouse,
        """
        select source_file, source_line, null from raw.usage_events
        union all
        select source_file, source_line, reason from raw.usage_quarantine
        """,
    )
    return {(name, line): reason for name, line, reason in rows}


def check_of(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return check


def doctor(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["doctor", "--data-dir", str(data_dir)])
    return result.exit_code, result.output


# -- 1. accepted events are never stranded -----------------------------------------------------


def test_events_acknowledged_before_a_failed_landing_are_landed_by_the_next_run(
    tmp_path, monkeypatch
):
    warehouse = make_warehouse(tmp_path)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    with ServerProcess(warehouse.root) as server:
        answer = post(server, key, [event("stranded-1"), event("stranded-2", value=2)])
        assert answer.json()["accepted"] == 2

        # The warehouse cannot be written (a full disk, a foreign lock): the run fails.
        def fail(*args, **kwargs):
            raise landing.LandingError("writing api/... to the warehouse failed: disk full")

        monkeypatch.setattr(landing, "_write_chunk", fail)
        failed = dg.materialize(
            [raw_usage, acknowledged_events_landed],
            resources={"warehouse": warehouse},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        assert not failed.success
        monkeypatch.undo()
        # Nothing was marked done: doctor still sees the acknowledged file as not landed.
        later = datetime.now(UTC) + timedelta(minutes=10)
        from dagster_billing.doctor import diagnose

        stranded = diagnose(warehouse.root, now=later.timestamp())
        assert any("not landed for over" in problem for problem in stranded.problems)

        # The next run lands them; the check proves every acknowledged id is in raw.
        result = land(warehouse)
        check = check_of(result, "acknowledged_events_landed")
        assert check.passed
        assert check.metadata["events_acknowledged"].value == 2
        assert query_raw(warehouse, "select unique_id, value from raw.usage_events order by 1") == [
            ("acme:stranded-1", Decimal(1)),
            ("acme:stranded-2", Decimal(2)),
        ]
        # A client re-send is a duplicate, and that is true now: the event is landed.
        assert post(server, key, [event("stranded-1")]).json()["duplicate"] == 1
    assert doctor(warehouse.root)[0] == 0


def test_the_check_fails_loudly_naming_files_and_ids_acknowledged_but_not_landed(tmp_path):
    warehouse = make_warehouse(tmp_path)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    with ServerProcess(warehouse.root) as server:
        post(server, key, [event("lost-1")])
        [lost] = list((warehouse.landing_dir / "api").rglob("*.ndjson"))
        land(warehouse)
        post(server, key, [event("lost-2"), event("lost-3")])
        [gone] = [p for p in (warehouse.landing_dir / "api").rglob("*.ndjson") if p != lost]
        gone.unlink()  # deleted before landing: data loss the check must report
        result = land(warehouse)
    check = check_of(result, "acknowledged_events_landed")
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    [item] = check.metadata["not_landed"].value
    assert item["file"] == gone.relative_to(warehouse.landing_dir).as_posix()
    assert item["why"] == "deleted before landing"
    assert sorted(item["ids"]) == ["acme:lost-2", "acme:lost-3"]
    code, output = doctor(warehouse.root)
    assert code == 1 and "acme:lost-2" in output and item["file"] in output


def test_a_new_raw_layer_lands_every_file_again_whatever_the_ledger_remembers(tmp_path):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse, "bom.ndjson")
    land(warehouse)
    # Restored from nothing; the landing ledger (the sensor's mirror) still says landed.
    shutil.rmtree(warehouse.raw_store.root)
    land(warehouse)
    assert query_raw(warehouse, "select count(*) from raw.usage_events") == [(2,)]


# -- 2. one bad line or file never blocks landing, and errors name the file ---------------------


def test_every_bad_line_is_a_reason_and_a_bad_file_is_quarantined_whole(tmp_path, monkeypatch):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse)
    (warehouse.landing_dir / "boom.ndjson").write_bytes(orjson.dumps(event("boom-1")) + b"\n")
    os.utime(warehouse.landing_dir / "boom.ndjson", (0, 0))
    read = landing.ndjson_frame

    def reader_bug(contents):
        if any(b"boom-1" in data for data in contents):
            raise ValueError("a reader bug")
        return read(contents)

    monkeypatch.setattr(landing, "ndjson_frame", reader_bug)
    result = land(warehouse)

    assert result.success
    reasons = raw_reasons(warehouse)
    assert reasons.pop(("boom.ndjson", 0)) == "unreadable_file"
    assert reasons == EXPECTED
    [(message,)] = query_raw(
        warehouse, "select raw_text from raw.usage_quarantine where source_file = 'boom.ndjson'"
    )
    assert message.startswith("boom.ndjson: cannot be read: ValueError: a reader bug")
    [(message,)] = query_raw(
        warehouse, "select raw_text from raw.usage_quarantine where source_file = 'utf16.csv'"
    )
    assert message == "utf16.csv: the text is UTF-16 (byte order mark): save it as UTF-8"
    # Every file is recorded, with as many rows as it has outcomes.
    landed = dict(query_raw(warehouse, "select file_name, row_count from raw.landed_files"))
    assert landed["utf16.csv"] == 1 and landed["boom.ndjson"] == 1
    assert sum(landed.values()) == len(EXPECTED) + 1
    assert check_of(result, "acknowledged_events_landed").passed


# -- 3. bytes that are not UTF-8 never merge two events ------------------------------------------


def test_two_ids_that_differ_only_in_non_utf8_bytes_are_never_merged(tmp_path):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse, "not_utf8.csv")
    land(warehouse)
    rows = query_raw(
        warehouse,
        "select source_line, reason, raw_text from raw.usage_quarantine order by source_line",
    )
    assert rows == [
        (
            2,
            "invalid_encoding",
            "adv-latin-\\xe9,acct_meridian,api.requests,1,2026-01-05T12:00:00Z,",
        ),
        (
            3,
            "invalid_encoding",
            "adv-latin-\\xe8,acct_meridian,api.requests,2,2026-01-05T12:00:00Z,",
        ),
    ]
    assert query_raw(warehouse, "select unique_id from raw.usage_events") == [("adv-latin-ok",)]


# -- 4. a file still being written is never billed truncated -------------------------------------


def test_a_file_being_written_lands_only_complete_lines_once_it_is_quiet(tmp_path, monkeypatch):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse, "truncated.csv")
    path = warehouse.landing_dir / "truncated.csv"
    land(warehouse)
    # The row cut mid-value ("10" of "100") is left for later, not billed and not quarantined.
    assert raw_reasons(warehouse) == {("truncated.csv", 2): None}
    code, output = doctor(warehouse.root)
    assert code == 0 and "truncated.csv: its last" in output

    # The writer goes on while landing waits for the file to be quiet: left for the next run.
    def writer_finishes_the_row(seconds):
        with path.open("ab") as handle:
            handle.write(b"0,2026-01-05T12:00:00Z,\n")

    monkeypatch.setattr(ingest_assets.time, "sleep", writer_finishes_the_row)
    os.utime(path)  # written to just now
    land(warehouse)
    assert query_raw(warehouse, "select count(*) from raw.landed_files") == [(1,)]
    monkeypatch.undo()

    os.utime(path, (0, 0))  # quiet since
    land(warehouse)
    values = dict(query_raw(warehouse, "select unique_id, value from raw.usage_events"))
    assert values["adv-trunc-2"] == Decimal(100)
    assert query_raw(warehouse, "select count(*) from raw.usage_events where value = 10") == [(0,)]
    assert doctor(warehouse.root)[0] == 0


class _Clock:
    """time.time and time.sleep for landing: sleeping moves the clock on, at once."""

    def __init__(self) -> None:
        self.slept = 0.0

    def time(self) -> float:
        return time.time() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


def test_a_file_waited_for_lands_in_its_place_in_arrival_order(tmp_path, monkeypatch):
    """A replay lands the same files once they are all quiet: file_seq (what decides which of
    two events with one id arrived first) must not depend on which of them was fresh."""
    monkeypatch.setenv("BILLING_LANDING_QUIET_SECONDS", "60")
    clock = _Clock()
    monkeypatch.setattr(ingest_assets, "time", clock)
    monkeypatch.setattr(ledger, "time", clock)
    warehouse = make_warehouse(tmp_path)
    warehouse.landing_dir.mkdir(parents=True)
    for name in ("a.ndjson", "b.ndjson", "c.ndjson"):
        (warehouse.landing_dir / name).write_bytes(orjson.dumps(event(f"order-{name}")) + b"\n")
        if name != "a.ndjson":
            os.utime(warehouse.landing_dir / name, (0, 0))  # quiet long since; a.ndjson is fresh

    land(warehouse)

    assert clock.slept > 0  # a.ndjson was waited for
    assert query_raw(
        warehouse, "select file_name, file_seq from raw.landed_files order by file_seq"
    ) == [("a.ndjson", 1), ("b.ndjson", 2), ("c.ndjson", 3)]


# -- 6. the API rejects bad items one by one and accepts the rest ---------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("adversarial-api") / "data"
    key = create_key(data_dir, "acme", "acct_meridian")
    process = ServerProcess(data_dir).start()
    yield process, key
    process.stop()


def post(server, key, body, *, path="/v1/measurements", content_type="application/json"):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(
        f"{server.url}{path}",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
        timeout=30,
    )


def errors(response) -> list[tuple]:
    return [(e.get("line", e["index"]), e["reason"]) for e in response.json()["errors"]]


def test_bad_items_are_rejected_one_by_one_never_the_whole_batch(server):
    process, key = server
    deep = (ADVERSARIAL / "deep_properties.ndjson").read_bytes().splitlines()
    # A JSON batch: the item with properties 300 deep and the one whose value is nested are
    # refused, the others accepted.
    batch = b"[" + b",".join([deep[0], deep[1], deep[3], deep[4]]) + b"]"
    response = post(process, key, batch)
    assert response.status_code == 202
    assert errors(response) == [(1, "invalid_properties"), (2, "malformed_json")]
    assert response.json()["accepted"] == 2
    # NDJSON: 5000 deep is beyond what the JSON decoder reads, and still only that line.
    body = b"\n".join(deep).replace(b"adv-", b"nd-adv-")
    response = post(process, key, body, content_type="application/x-ndjson")
    assert errors(response) == [
        (2, "invalid_properties"),
        (3, "malformed_json"),
        (4, "malformed_json"),
    ]
    # The same as the whole JSON body cannot be read at all: a clear 400, not a 500.
    response = post(process, key, deep[2])
    assert response.status_code == 400 and "malformed JSON" in response.json()["message"]

    response = post(
        process,
        key,
        (ADVERSARIAL / "not_utf8.ndjson").read_bytes(),
        content_type="application/x-ndjson",
    )
    assert (response.status_code, errors(response)) == (202, [(2, "invalid_encoding")])

    for name, expected in [
        ("big_field.csv", [(3, "field_too_large")]),
        ("repeated_header.csv", [(3, "repeated_header"), (4, "missing_meter")]),
        ("excel_bom.csv", []),
    ]:
        body = (ADVERSARIAL / name).read_bytes()
        response = post(process, key, body, path="/v1/measurements/csv", content_type="text/csv")
        assert (response.status_code, errors(response)) == (202, expected), name
    utf16 = (ADVERSARIAL / "utf16.csv").read_bytes()
    response = post(process, key, utf16, path="/v1/measurements/csv", content_type="text/csv")
    assert response.status_code == 400 and "UTF-16" in response.json()["message"]
    accepted = {line["uniqueId"] for line in landed_lines(process.data_dir)}
    assert {"acme:adv-deep-ok-2", "acme:adv-nd-ok-2", "acme:adv-big-ok-2", "acme:adv-excel-1"} <= (
        accepted
    )


def test_the_sdk_refuses_an_event_it_cannot_send_and_sends_the_rest(server):
    from dagster_billing.sdk import BillingClient

    process, key = server
    deep: dict = {}
    inner = deep
    for _ in range(300):
        inner["a"] = inner = {}
    with BillingClient(process.url, key) as client:
        client.record("api.requests", "acct_meridian", 1, ts=TS, unique_id="sdk-adv-1")
        with pytest.raises(ValueError, match="cannot be sent as JSON"):
            client.record("api.requests", "acct_meridian", 1, ts=TS, properties=deep)
        client.record("api.requests", "acct_meridian", 2, ts=TS, unique_id="sdk-adv-2")
    assert (client.stats.accepted, client.stats.failed) == (2, 0)


# -- 7. a UTF-8 byte order mark is not part of the first line -----------------------------------


def test_a_byte_order_mark_is_accepted_in_files_and_requests(tmp_path, server):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse, "excel_bom.csv", "bom.ndjson")
    land(warehouse)
    assert sorted(query_raw(warehouse, "select unique_id from raw.usage_events")) == [
        ("adv-bom-1",),
        ("adv-bom-2",),
        ("adv-excel-1",),
        ("adv-excel-2",),
    ]
    assert query_raw(warehouse, "select count(*) from raw.usage_quarantine") == [(0,)]
    process, key = server
    body = b"\xef\xbb\xbf" + orjson.dumps(event("bom-api-1")) + b"\n"
    response = post(process, key, body, content_type="application/x-ndjson")
    assert response.json()["accepted"] == 1
    response = post(process, key, b"\xef\xbb\xbf" + orjson.dumps(event("bom-api-2")))
    assert response.json()["accepted"] == 1


# -- 8. security: header size, key cache, formulas in CSVs ---------------------------------------


def test_huge_authorization_headers_are_refused_and_never_cached(server, tmp_path):
    from dagster_billing.api import app as api_app
    from dagster_billing.api.settings import ApiSettings

    process, key = server
    response = httpx.post(
        f"{process.url}/v1/measurements",
        content=orjson.dumps(event("huge-1")),
        headers={"Authorization": "Bearer " + "x" * 20_000},
    )
    assert response.status_code == 431
    too_long = "bk_" + "x" * 300
    response = post(process, too_long, event("huge-2"))
    assert response.status_code == 401

    authenticate = api_app.Authenticator(ApiSettings(data_dir=process.data_dir))
    for n in range(50):
        assert authenticate(f"bk_{n:012x}.not-a-secret") is None
    assert authenticate("bk_" + "x" * 10_000) is None
    assert authenticate.cached_keys == 0
    assert authenticate(key) is not None and authenticate.cached_keys == 1

    keys = [create_key(process.data_dir, "acme") for _ in range(3)]
    small = api_app.Authenticator(ApiSettings(data_dir=process.data_dir))
    original = api_app.KEY_CACHE_SIZE
    api_app.KEY_CACHE_SIZE = 2
    try:
        for other in keys:
            assert small(other) is not None
        assert small.cached_keys == 2
    finally:
        api_app.KEY_CACHE_SIZE = original


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("-12.50", "-12.50"),
        ("0", "0"),
        ("Meridian Inc.", "Meridian Inc."),
        (None, ""),
    ],
)
def test_csv_cells_that_spreadsheets_would_run_are_written_as_text(value, written):
    from dagster_billing.lib.csv_safe import safe_cell

    assert safe_cell(value) == written


def test_every_finance_csv_writer_neutralizes_formulas(tmp_path):
    from dagster_billing.defs.invoicing import csv_files as exports

    evil = "=cmd|' /C calc'!A0"
    period = datetime(2026, 1, 1).date()
    invoice = {
        **dict.fromkeys(exports.INVOICE_CSV_COLUMNS),
        "invoice_id": "inv-1",
        "account_name": evil,
        "period_start": period,
        "minor_units": 2,
        "total": Decimal("-12.50"),
    }
    line = {
        **dict.fromkeys(exports.LINE_CSV_COLUMNS),
        "invoice_id": "inv-1",
        "period_start": period,
        "dimension_value": "@evil",
        "minor_units": 2,
        "amount": Decimal("-12.50"),
    }
    usage = {
        **dict.fromkeys(exports.USAGE_BY_DIMENSION_CSV_COLUMNS),
        "period_start": period,
        "account_id": "acct_x",
        "dimension_value": "+evil",
    }
    written = exports.write_invoice_exports([invoice], [line], tmp_path / "exports")
    written += exports.write_usage_exports([], [usage], tmp_path / "exports")
    from dagster_billing.pricing.batch import write_outputs

    write_outputs(
        ([("invoice_id", "VARCHAR"), ("account_name", "VARCHAR")], [invoice]),
        (
            [("invoice_id", "VARCHAR"), ("invoice_line_id", "VARCHAR"), ("description", "VARCHAR")],
            [{**line, "invoice_line_id": "inv-1:api", "description": "-evil"}],
        ),
        (
            [("invoice_line_id", "VARCHAR"), ("tier_number", "INTEGER")],
            [{"invoice_line_id": "inv-1:api", "tier_number": 1}],
        ),
        tmp_path / "price",
    )
    written += [
        tmp_path / "price" / name
        for name in ("invoices.csv", "invoice_lines.csv", "invoice_line_tiers.csv")
    ]
    cells = [
        cell
        for path in written
        for row in csv.reader(io.StringIO(path.read_text()))
        for cell in row
        if cell
    ]
    assert {"'" + evil, "'@evil", "'+evil", "'-evil", "-12.50"} <= set(cells)
    assert not [cell for cell in cells if cell[0] in "=+@\t\r" or cell.startswith("-e")]


# -- 9. Stripe reconciliation retries every page ------------------------------------------------


def test_every_stripe_page_goes_through_the_retry_policy(tmp_path):
    from dagster_billing.fakes import start_fakes
    from dagster_billing.sync import stripe_api
    from dagster_billing.sync.retry import RetryPolicy

    # The client waits 1 s: long enough that only the injected timeouts (1.5 s) time out on a
    # loaded machine (0.3 s let an ordinary page time out once under a CI load: 5 retries, 4 faults).
    fakes = start_fakes(tmp_path / "fakes", timeout_delay=1.5)
    try:
        env = fakes.environment()
        api = stripe_api.StripeApi(
            api_key=env["STRIPE_API_KEY"],
            api_base=env["STRIPE_API_BASE"],
            timeout_seconds=1.0,
            retry=RetryPolicy(
                max_attempts=8, initial_backoff_seconds=0.01, max_backoff_seconds=0.02
            ),
        )
        customer = api.create("customers", {"name": "X"}, "key-customer")[0]["id"]
        for n in range(250):
            api.create(
                "invoice_items",
                {"customer": customer, "amount": n + 1, "currency": "usd"},
                f"key-item-{n}",
            )
        # Seed 1: the first page fails twice, the second and third once each.
        fakes.set_faults(rate=0.5, kinds=["500", "timeout"], methods=["GET"], seed=1)
        items = api.list_all("invoice_items")
        injected = sum(fakes.stripe.faults.injected.values())
    finally:
        fakes.stop()
    assert sorted(item["amount"] for item in items) == list(range(1, 251))
    assert injected == 4 and api.counter.stats()["retried_requests"] == 4


# -- 10. leap seconds, the event time floor, huge values, one reason for an empty meter ----------


def test_edge_values_get_their_own_reasons_and_a_leap_second_stays_in_its_period(tmp_path, server):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse, "edge_values.ndjson", "repeated_header.csv")
    land(warehouse)
    reasons = raw_reasons(warehouse)
    assert reasons == {key: value for key, value in EXPECTED.items() if key in reasons}
    assert len(reasons) == 10
    [(event_ts,)] = query_raw(
        warehouse, "select event_ts from raw.usage_events where unique_id = 'adv-leap-second'"
    )
    assert event_ts == datetime(2026, 1, 31, 23, 59, 59, 999999)

    # The API gives the same reasons, and one reason for an empty meter in JSON and in CSV.
    process, key = server
    body = (ADVERSARIAL / "edge_values.ndjson").read_bytes().replace(b"adv-", b"api-adv-")
    response = post(process, key, body, content_type="application/x-ndjson")
    assert errors(response) == [
        (2, "timestamp_before_floor"),
        (3, "value_too_large"),
        (4, "missing_meter"),
        (5, "missing_account"),
        (6, "missing_value"),
    ]
    assert "too large" in response.json()["errors"][1]["message"]
    csv_body = "uniqueId,account,meter,value,ts\napi-blank-meter,acct_meridian,,1," + TS + "\n"
    response = post(
        process, key, csv_body.encode(), path="/v1/measurements/csv", content_type="text/csv"
    )
    assert errors(response) == [(2, "missing_meter")]


# -- one pipeline run over everything -------------------------------------------------------------


@pytest.mark.slow
def test_the_rest_lands_and_is_billed_and_nothing_is_lost(tmp_path):
    warehouse = make_warehouse(tmp_path)
    copy_fixtures(warehouse)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    with ServerProcess(warehouse.root) as api_server:
        deep = (ADVERSARIAL / "deep_properties.ndjson").read_bytes().replace(b"adv-", b"api-")
        response = post(api_server, key, deep, content_type="application/x-ndjson")
        assert response.json()["accepted"] == 2
        result = run_pipeline(warehouse, as_of="2026-02-10T00:00:00")

    nothing_lost = check_of(result, "nothing_lost")
    assert nothing_lost.passed
    assert nothing_lost.metadata["raw"].value == len(EXPECTED) + 2
    acknowledged = check_of(result, "acknowledged_events_landed")
    assert acknowledged.passed and acknowledged.metadata["events_acknowledged"].value == 2
    outcomes = dict(
        query(
            warehouse,
            "select unique_id, outcome from billing.fct_usage_event_outcomes "
            "where unique_id in ('adv-leap-second', 'acme:api-deep-ok-2', 'adv-excel-1')",
        )
    )
    assert outcomes == {
        "adv-leap-second": "accepted",
        "acme:api-deep-ok-2": "accepted",
        "adv-excel-1": "accepted",
    }
    usage_csv = warehouse.exports_dir / "usage" / "2026-01" / "acct_meridian.by_dimension.csv"
    dimension_values = {row["dimension_value"] for row in csv.DictReader(usage_csv.open())}
    assert {'\'=HYPERLINK("http://evil.example","x")', "'@SUM(1+1)"} <= dimension_values
