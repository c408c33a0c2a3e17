"""A process outside the pipeline holding the live warehouse (a notebook left open on it) makes
the pipeline wait with backoff and say why, not fail; past BILLING_WAREHOUSE_LOCK_TIMEOUT it fails
with that message."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dagster_billing.lib.warehouse_lock import WarehouseLocked, is_lock_conflict
from tests.conftest import make_warehouse

HOLDER = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
    "print('held', flush=True); time.sleep(float(sys.argv[2]))"
)


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture
def warehouse(tmp_path: Path):
    warehouse = make_warehouse(tmp_path)
    with warehouse.connect() as connection:
        connection.execute("create table t as select 1 as x")
    return warehouse


def test_a_reader_on_the_warehouse_is_waited_for(warehouse, monkeypatch, caplog):
    monkeypatch.setenv("BILLING_WAREHOUSE_LOCK_TIMEOUT", "60")
    holder = _hold(warehouse.duckdb_path, 2)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), warehouse.connect() as connection:
        connection.execute("insert into t values (2)")
    holder.wait()
    assert time.monotonic() - started > 1
    assert "is locked by another process (Conflicting lock is held in" in caplog.text
    assert "billing analytics path" in caplog.text


def test_a_lock_held_past_the_timeout_fails_with_the_reason(warehouse, monkeypatch):
    monkeypatch.setenv("BILLING_WAREHOUSE_LOCK_TIMEOUT", "1")
    holder = _hold(warehouse.duckdb_path, 20)
    try:
        locked = pytest.raises(WarehouseLocked, match=r"gave up after 1 s: the warehouse .* locked")
        with locked, warehouse.connect():
            pass
    finally:
        holder.kill()
        holder.wait()


def test_only_lock_conflicts_are_waited_for(tmp_path: Path):
    with pytest.raises(duckdb.Error) as error:
        duckdb.connect(str(tmp_path / "missing" / "x.duckdb"))
    assert not is_lock_conflict(error.value)
    assert is_lock_conflict('IO Error: Could not set lock on file "w.duckdb": Conflicting lock')
    assert not is_lock_conflict(WarehouseLocked("gave up: Could not set lock on file"))
