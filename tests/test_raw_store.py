"""The raw Parquet layer: a batch is committed by its ledger rows (written last), a file lands
once by content, what a crashed landing left is never read and is cleaned up; and on Spark the
Python side sees the Spark tables' Parquet files as DuckDB views."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pytest

from dagster_billing.defs.ingest import landing as landing_module
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


def _landed(store: RawStore) -> dict[str, list[tuple]]:
    """Every committed raw row, ordered, batch ids left out."""
    with store.connect() as connection:
        return {
            table: connection.execute(
                f"select * exclude (batch_id) from raw.{table} order by all"
            ).fetchall()
            for table in RAW_TABLES
        }


def test_files_landed_in_many_chunks_read_ahead_land_as_in_one(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    paths = [_file(landing, f"{n}.ndjson", f"e{n}a", f"e{n}b") for n in range(5)]
    paths.insert(3, paths[1])  # the same file twice: skipped the second time
    one = RawStore(tmp_path / "one")
    together = land_files(one, paths, landing_dir=landing, received_at=RECEIVED)
    monkeypatch.setattr(landing_module, "CHUNK_BYTES", 1)  # one file per chunk
    many = RawStore(tmp_path / "many")
    chunked = land_files(many, paths, landing_dir=landing, received_at=RECEIVED)

    assert [(r.file_name, r.accepted, r.quarantined, r.outcome) for r in chunked] == [
        (r.file_name, r.accepted, r.quarantined, r.outcome) for r in together
    ]
    assert [r.skipped for r in chunked] == [False, False, False, True, False, False]
    assert len(set(many.ledger()["batch_id"])) == 5
    assert _landed(many) == _landed(one)
    assert many.ledger()["file_seq"].to_list() == [1, 2, 3, 4, 5]


def test_a_chunk_that_fails_to_write_leaves_the_chunks_before_it_landed(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    paths = [_file(landing, f"{n}.ndjson", f"e{n}") for n in range(3)]
    monkeypatch.setattr(landing_module, "CHUNK_BYTES", 1)
    store = RawStore(tmp_path / "raw")
    written = RawStore.write_batch

    def second_fails(self, batch, landed_on, events, quarantine, ledger):
        if ledger["file_name"].to_list() == ["1.ndjson"]:
            raise OSError("disk full")
        written(self, batch, landed_on, events, quarantine, ledger)

    monkeypatch.setattr(RawStore, "write_batch", second_fails)
    with pytest.raises(LandingError, match=r"writing 1\.ndjson to the raw layer failed"):
        land_files(store, paths, landing_dir=landing, received_at=RECEIVED)

    assert store.ledger()["file_name"].to_list() == ["0.ndjson"]
    assert _committed_events(store) == ["e0"]


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
