"""Reads of the billing marts shared by exports and checks."""

from __future__ import annotations

import duckdb

INVOICE_COLUMNS = (
    "invoice_id",
    "account_id",
    "account_name",
    "period_start",
    "period_end",
    "plan_code",
    "plan_version",
    "currency",
    "minor_units",
    "line_count",
    "subtotal",
    "total",
    "total_minor",
)
LINE_COLUMNS = (
    "invoice_line_id",
    "invoice_id",
    "line_number",
    "line_type",
    "account_id",
    "period_start",
    "period_end",
    "currency",
    "minor_units",
    "charge_id",
    "meter_code",
    "dimension_value",
    "pricing_model",
    "description",
    "quantity",
    "unit_price",
    "amount_unrounded",
    "amount",
    "amount_minor",
)


def fetch_rows(
    connection: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], order_by: str
) -> list[dict]:
    cursor = connection.execute(
        f"select {', '.join(columns)} from billing.{table} order by {order_by}"
    )
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def fetch_invoices(connection: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch_rows(connection, "fct_invoices", INVOICE_COLUMNS, "period_start, invoice_id")


def fetch_invoice_lines(connection: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch_rows(
        connection, "fct_invoice_lines", LINE_COLUMNS, "period_start, invoice_id, line_number"
    )
