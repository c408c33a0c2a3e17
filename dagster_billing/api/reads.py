"""Usage, estimates and quotas for the API, read from the published analytics snapshot.

The API never opens the DuckDB warehouse: a read-only open fails while the pipeline writes, which
with a sensor landing every few seconds would be most of the time, and blocks the pipeline while
it is open. After each run the pipeline publishes an immutable snapshot (dagster_billing.analytics);
the reader loads the tables it serves from the current one, once per snapshot, so every answer
comes from one consistent snapshot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from dagster_billing.analytics import (
    NoSnapshotYet,
    current_snapshot_path,
    open_snapshot,
    published_tables,
    snapshot_meta,
)

SNAPSHOT_TABLES = {
    "rated_usage": "billing.fct_rated_usage",
    "invoice_lines": "billing.fct_invoice_lines",
    "invoices": "billing.fct_invoices",
    "quotas": "billing.fct_usage_quotas",
}


class SnapshotUnavailable(Exception):
    """No snapshot yet (the pipeline has not run): 503 with Retry-After."""


@dataclass(frozen=True)
class Snapshot:
    version: str
    created_at: str
    tables: dict[str, pl.DataFrame]


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _records(frame: pl.DataFrame, columns: list[str]) -> list[dict]:
    present = [column for column in columns if column in frame.columns]
    return [
        {column: _jsonable(value) for column, value in row.items()}
        for row in frame.select(present).iter_rows(named=True)
    ]


class SnapshotReader:
    """Loads the current snapshot's tables once per snapshot (a readlink per request to notice a
    new one)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def current(self) -> Snapshot:
        try:
            current = current_snapshot_path(self.data_dir).name
        except NoSnapshotYet:
            raise SnapshotUnavailable(
                "no usage snapshot yet: it appears after the pipeline's first run"
            ) from None
        with self._lock:
            if self._snapshot is None or self._snapshot.version != current:
                with open_snapshot(self.data_dir) as connection:
                    meta = snapshot_meta(connection)
                    # A snapshot published by an earlier version may lack a newer table: the
                    # reads of that table say so until the next run publishes one with it.
                    present = published_tables(connection)
                    tables = {
                        name: connection.sql(f"select * from {table}").pl()
                        for name, table in SNAPSHOT_TABLES.items()
                        if table in present
                    }
                self._snapshot = Snapshot(
                    meta["path"].name, meta["created_at"].replace(tzinfo=UTC).isoformat(), tables
                )
            return self._snapshot

    @staticmethod
    def _period(frame: pl.DataFrame, account: str, period: str | None) -> pl.DataFrame:
        rows = frame.filter(pl.col("account_id") == account)
        if rows.is_empty():
            return rows
        if period is None:
            latest = rows.get_column("period_start").max()
            return rows.filter(pl.col("period_start") == latest)
        month = datetime.strptime(period, "%Y-%m").strftime("%Y-%m")
        # The period that starts in that month (the 1st, or an anniversary account's anchor day).
        return rows.filter(pl.col("period_start").cast(pl.Date).dt.strftime("%Y-%m") == month)

    def _period_rows(
        self,
        table: str,
        key: str,
        account: str,
        period: str | None,
        sort: list[str],
        columns: list[str],
    ) -> dict:
        """The account's rows of one snapshot table in the period (default its latest), as
        `{"account", "as_of", "period": {"start", "end"}, key: [rows]}`."""
        snapshot = self.current()
        if table not in snapshot.tables:
            raise SnapshotUnavailable(
                f"the current snapshot has no {key} yet: the next pipeline run publishes them"
            )
        rows = self._period(snapshot.tables[table], account, period).sort(*sort)
        body = {"account": account, "as_of": snapshot.created_at, "period": None, key: []}
        if rows.is_empty():
            return body
        first = rows.row(0, named=True)
        body["period"] = {
            "start": _jsonable(first["period_start"]),
            "end": _jsonable(first["period_end"]),
        }
        body[key] = _records(rows, columns)
        return body

    def usage(self, account: str, period: str | None) -> dict:
        return self._period_rows(
            "rated_usage",
            "usage",
            account,
            period,
            ["meter_code", "dimension_value", "charge_id"],
            [
                "meter_code",
                "dimension_value",
                "charge_id",
                "description",
                "pricing_model",
                "quantity",
                "event_count",
                "unit_price",
                "amount_unrounded",
                "currency",
            ],
        )

    def quotas(self, account: str, period: str | None) -> dict:
        """The account's quotas in the period (default its latest): usage against each limit and
        whether the account still has access (fct_usage_quotas, decision 121)."""
        return self._period_rows(
            "quotas",
            "quotas",
            account,
            period,
            ["meter_code"],
            [
                "quota_id",
                "meter_code",
                "overage_policy",
                "limit_quantity",
                "used_quantity",
                "remaining_quantity",
                "overage_quantity",
                "is_exhausted",
                "has_access",
            ],
        )

    def estimate(self, account: str, period: str | None, now: datetime | None = None) -> dict:
        """The invoice as it stands: lines and total exactly as dbt rated and rounded them."""
        snapshot = self.current()
        invoices = self._period(snapshot.tables["invoices"], account, period)
        body = {"account": account, "as_of": snapshot.created_at, "invoice": None}
        if invoices.is_empty():
            return body
        invoice = _records(invoices, list(invoices.columns))[0]
        lines = snapshot.tables["invoice_lines"].filter(
            pl.col("invoice_id") == invoice["invoice_id"]
        )
        if "line_number" in lines.columns:
            lines = lines.sort("line_number")
        invoice["lines"] = _records(
            lines,
            [
                "line_number",
                "line_type",
                "charge_id",
                "meter_code",
                "dimension_value",
                "description",
                "quantity",
                "unit_price",
                "amount",
                "amount_minor",
            ],
        )
        body["invoice"] = invoice
        body["period_elapsed"] = _elapsed(
            invoices.get_column("period_start")[0],
            invoices.get_column("period_end")[0],
            now or datetime.now(UTC),
        )
        return body


def _elapsed(start: object, end: object, now: datetime) -> str:
    """Share of the billing period behind us (0..1, 4 places): progress, not money."""
    start_at = datetime.combine(start, datetime.min.time(), UTC) if type(start) is date else start
    end_at = datetime.combine(end, datetime.min.time(), UTC) if type(end) is date else end
    if start_at.tzinfo is None:
        start_at = start_at.replace(tzinfo=UTC)
    if end_at.tzinfo is None:
        end_at = end_at.replace(tzinfo=UTC)
    total = (end_at - start_at).total_seconds()
    done = min(max((now - start_at).total_seconds(), 0.0), total)
    return str((Decimal(int(done)) / Decimal(int(total))).quantize(Decimal("0.0001")))
