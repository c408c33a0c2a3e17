"""Bad input ends in quarantine with a reason; raw = accepted + duplicates + quarantined.
All on the shared run of tests/fixtures/malformed (conftest.malformed_warehouse)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tests.conftest import MALFORMED_AS_OF, MALFORMED_GROUP, copy_warehouse, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(MALFORMED_GROUP)]

EXPECTED_OUTCOMES = {
    # (file, line) -> (outcome, reason)
    ("events.ndjson", 1): ("accepted", None),
    ("events.ndjson", 2): ("quarantined", "missing_id"),
    ("events.ndjson", 3): ("quarantined", "missing_id"),
    ("events.ndjson", 4): ("quarantined", "bad_timestamp"),
    ("events.ndjson", 5): ("quarantined", "bad_timestamp"),
    ("events.ndjson", 6): ("quarantined", "bad_timestamp"),
    ("events.ndjson", 7): ("quarantined", "non_numeric_value"),
    ("events.ndjson", 8): ("quarantined", "negative_value"),
    ("events.ndjson", 9): ("quarantined", "missing_value"),
    ("events.ndjson", 10): ("quarantined", "missing_value"),
    ("events.ndjson", 11): ("quarantined", "future_timestamp"),
    ("events.ndjson", 12): ("quarantined", "value_too_precise"),
    ("events.ndjson", 13): ("quarantined", "missing_timestamp"),
    ("events.ndjson", 14): ("quarantined", "missing_account"),
    ("events.ndjson", 15): ("quarantined", "missing_meter"),
    ("events.ndjson", 16): ("quarantined", "invalid_properties"),
    ("events.ndjson", 17): ("quarantined", "malformed_json"),
    ("events.ndjson", 18): ("quarantined", "malformed_json"),
    ("events.ndjson", 19): ("quarantined", "unknown_meter"),
    ("events.ndjson", 20): ("quarantined", "unknown_account"),
    ("events.ndjson", 21): ("duplicate", None),
    ("events.ndjson", 22): ("duplicate", None),
    ("events.ndjson", 23): ("accepted", None),
    ("backfill.csv", 2): ("accepted", None),
    ("backfill.csv", 3): ("quarantined", "malformed_csv_row"),
    ("backfill.csv", 4): ("quarantined", "non_numeric_value"),
    ("backfill.csv", 5): ("quarantined", "invalid_properties"),
    ("backfill.csv", 6): ("accepted", None),
}


def _outcomes(warehouse) -> dict:
    rows = query(
        warehouse,
        """
        select files.file_name, outcomes.source_line, outcomes.outcome, outcomes.reason
        from billing.fct_usage_event_outcomes as outcomes
        join raw.landed_files as files using (file_seq)
        """,
    )
    return {(name, line): (outcome, reason) for name, line, outcome, reason in rows}


def test_every_bad_row_is_quarantined_with_its_reason(malformed_warehouse):
    warehouse, result = malformed_warehouse

    assert _outcomes(warehouse) == EXPECTED_OUTCOMES
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "nothing_lost"]
    assert check.passed
    assert check.metadata["raw"].value == len(EXPECTED_OUTCOMES)
    assert check.metadata["accepted"].value == 4
    assert check.metadata["duplicates"].value == 2
    assert check.metadata["quarantined"].value == len(EXPECTED_OUTCOMES) - 6


def test_the_quarantine_mart_shows_what_could_be_read_of_each_row(malformed_warehouse):
    """fct_usage_quarantine: every quarantined row once, with its file and line; the landed text
    of a row that failed at landing, the typed value and time of one that failed a reference
    check in SQL."""
    rows = query(
        malformed_warehouse.warehouse,
        """
        select file_name, source_line, reason, value, event_ts, raw_text
        from billing.fct_usage_quarantine order by file_name, source_line
        """,
    )
    quarantined = {
        key for key, (outcome, _) in EXPECTED_OUTCOMES.items() if outcome == "quarantined"
    }
    assert {(name, line) for name, line, *_ in rows} == quarantined
    assert len(rows) == len(quarantined)
    by_line = {(name, line): rest for name, line, *rest in rows}
    reason, value, event_ts, raw_text = by_line[("events.ndjson", 19)]
    assert (reason, value, raw_text) == ("unknown_meter", Decimal("10"), None)
    assert event_ts == datetime(2026, 1, 5, 12, 0)
    reason, value, event_ts, raw_text = by_line[("events.ndjson", 4)]
    assert (reason, value, event_ts) == ("bad_timestamp", None, None)
    assert '"ts":"2026-13-45T99:00:00Z"' in raw_text


def test_conflicting_duplicate_is_flagged_and_first_arrival_wins(malformed_warehouse):
    warehouse = malformed_warehouse.warehouse

    flags = query(
        warehouse,
        """
        select source_line, is_conflicting from billing.fct_usage_event_outcomes
        where unique_id = 'ok-1' and outcome = 'duplicate' order by source_line
        """,
    )
    assert flags == [(21, False), (22, True)]
    [(value,)] = query(
        warehouse,
        "select value from intermediate.int_usage_events_deduped where unique_id = 'ok-1'",
    )
    assert value == 10


def test_a_duplicate_arriving_in_a_later_run_is_compared_with_the_first_arrival(
    malformed_warehouse, tmp_path
):
    """The first arrival of ok-1 was accepted by an earlier run: a re-send of the same body is a
    plain duplicate, a changed value or changed properties a conflicting one."""
    warehouse = copy_warehouse(malformed_warehouse.warehouse, tmp_path)
    event = '{"uniqueId":"ok-1","account":"acct_meridian","meter":"api.requests",'
    (warehouse.landing_dir / "resent.ndjson").write_text(
        event
        + '"value":10,"ts":"2026-01-05T12:00:00Z"}\n'
        + event
        + '"value":10.0,"ts":"2026-01-05T12:00:00.000Z"}\n'
        + event
        + '"value":12,"ts":"2026-01-05T12:00:00Z"}\n'
        + event
        + '"value":10,"ts":"2026-01-05T12:00:00Z","properties":{"a":"b"}}\n'
    )
    run_pipeline(warehouse, as_of=MALFORMED_AS_OF)

    flags = query(
        warehouse,
        """
        select source_line, outcome, is_conflicting from billing.fct_usage_event_outcomes
        where file_seq = (select max(file_seq) from billing.fct_usage_event_outcomes)
        order by source_line
        """,
    )
    # 10.0 at .000Z is the same value and instant as the first arrival: not a conflict.
    assert flags == [
        (1, "duplicate", False),
        (2, "duplicate", False),
        (3, "duplicate", True),
        (4, "duplicate", True),
    ]


def test_relanding_the_same_files_adds_nothing(malformed_warehouse, tmp_path):
    warehouse = copy_warehouse(malformed_warehouse.warehouse, tmp_path)
    before = query(warehouse, "select count(*) from billing.fct_usage_event_outcomes")

    (warehouse.landing_dir / "events-copy.ndjson").write_bytes(
        (warehouse.landing_dir / "events.ndjson").read_bytes()
    )
    run_pipeline(warehouse, as_of=MALFORMED_AS_OF)

    assert query(warehouse, "select count(*) from raw.landed_files") == [(2,)]
    assert query(warehouse, "select count(*) from billing.fct_usage_event_outcomes") == before
