"""The raw Parquet layer: a batch is committed by its ledger rows (written last), a file lands
once by content, what a crashed landing left is never read and is cleaned up; and on Spark the
Python side sees the Spark tables' Parquet files as DuckDB views."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pytest

from dagster_billing.defs.ingest.landing import LandingError, land_files
from dagster_billing.defs.ingest.raw_store import RAW_TABLES, RawStore, raw_schema
from dagster_billing.lib.spark_tables import publish_spark_tables

RECEIVED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _file(directory, name: str, *ids: str):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        "".join(
            f'{{"uniqueId":"{i}","account":"acct_a","meter":"api.requests","value":1,'
            f'"ts":"2026-01-05T10:00:00Z"}}\n'
            for i in ids
        )
        + '{"uniqueId":"bad","account":"acct_a","meter":"api.requests","value":-1,'
        '"ts":"2026-01-05T10:00:00Z"}\n'
    )
    return path


def _committed_events(store: RawStore) -> list[str]:
    """What staging reads: event rows of batches in the ledger (stg_raw__usage_events)."""
    return (
        duckdb.sql(
            f"""
            select unique_id from read_parquet('{store.files_glob("usage_events")}')
            where batch_id in (select batch_id from read_parquet('{store.files_glob("landed_files")}'))
            order by unique_id
            """
        )
        .pl()["unique_id"]
        .to_list()
    )


def test_a_file_lands_once_by_content_into_typed_parquet(tmp_path):
    store = RawStore(tmp_path / "raw")
    landing = tmp_path / "landing"
    first = _file(landing, "a.ndjson", "e1", "e2")
    copy = landing / "copy.ndjson"
    copy.write_bytes(first.read_bytes())

    results = land_files(store, [first, copy], landing_dir=landing, received_at=RECEIVED)
    again = land_files(store, [first], landing_dir=landing, received_at=RECEIVED)

    assert [(r.rows, r.accepted, r.quarantined, r.skipped) for r in results] == [
        (3, 2, 1, False),
        (0, 0, 0, True),  # the same content again in the same call: nothing landed
    ]
    assert again[0].skipped
    assert store.row_counts() == {"usage_events": 2, "usage_quarantine": 1, "landed_files": 1}
    for table in RAW_TABLES:
        [path] = store.table_dir(table).glob("landed_date=2026-01-05/batch=*/part-0.parquet")
        assert pl.read_parquet_schema(path) == raw_schema(table)
    assert _committed_events(store) == ["e1", "e2"]


def test_a_crashed_landing_is_never_read_and_is_removed_by_the_next(tmp_path, monkeypatch):
    store = RawStore(tmp_path / "raw")
    landing = tmp_path / "landing"
    land_files(store, [_file(landing, "a.ndjson", "e1")], landing_dir=landing)
    written = RawStore.write_batch

    def crash_before_the_ledger(self, batch, landed_on, events, quarantine, ledger):
        written(self, batch, landed_on, events, quarantine, ledger.clear())
        raise OSError("disk full")

    monkeypatch.setattr(RawStore, "write_batch", crash_before_the_ledger)
    with pytest.raises(LandingError, match=r"writing b\.ndjson to the raw layer failed: disk full"):
        land_files(store, [_file(landing, "b.ndjson", "e2")], landing_dir=landing)
    monkeypatch.undo()
    # The crashed batch's data files are on disk, its ledger is empty: not committed.
    assert len(list(store.table_dir("usage_events").glob("*/batch=*"))) == 2
    assert _committed_events(store) == ["e1"]
    assert store.row_counts()["usage_events"] == 1

    land_files(store, [landing / "b.ndjson"], landing_dir=landing)

    assert _committed_events(store) == ["e1", "e2"]
    assert store.row_counts() == {"usage_events": 2, "usage_quarantine": 2, "landed_files": 2}
    assert store.ledger()["file_seq"].to_list() == [1, 2]


def test_spark_tables_become_duckdb_views_and_python_owned_views_stay(tmp_path):
    warehouse_dir = tmp_path / "spark" / "warehouse"
    invoices = warehouse_dir / "billing.db" / "fct_invoices"
    daily = warehouse_dir / "intermediate.db" / "int_usage_daily" / "usage_day=2026-01-05"
    invoices.mkdir(parents=True)
    daily.mkdir(parents=True)
    pl.DataFrame({"invoice_id": ["inv-1"], "total": [1]}).write_parquet(invoices / "part-0.parquet")
    pl.DataFrame({"account_id": ["a"]}).write_parquet(daily / "part-0.parquet")
    store = RawStore(tmp_path / "raw")
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema sync; create view sync.ledger_current as select 1 as x")

    published = publish_spark_tables(connection, warehouse_dir, store)

    assert "billing.fct_invoices" in published and "raw.usage_events" in published
    assert connection.sql("select * from billing.fct_invoices").fetchall() == [("inv-1", 1)]
    assert connection.sql(
        "select account_id, usage_day from intermediate.int_usage_daily"
    ).fetchall() == [("a", date(2026, 1, 5))]
    assert connection.sql("select count(*) from raw.landed_files").fetchall() == [(0,)]

    (invoices / "part-0.parquet").unlink()
    publish_spark_tables(connection, warehouse_dir, store)
    views = {
        row[0]
        for row in connection.sql(
            "select schema_name || '.' || view_name from duckdb_views() where not internal"
        ).fetchall()
    }
    assert "billing.fct_invoices" not in views
    assert "sync.ledger_current" in views
