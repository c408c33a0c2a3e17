"""Reads of the billing marts shared by exports, documents and checks."""

from __future__ import annotations

import duckdb

INVOICE_COLUMNS = (
    "invoice_id",
    "invoice_number",
    "status",
    "issuer_id",
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
    "discount_total",
    "credits_applied",
    "total",
    "total_minor",
    "issued_on",
    "closes_at",
    "finalized_at",
    "recalculated_at",
    "cycle_elapsed_percent",
    "estimated_period_charges",
    "tax_total",
    "customer_legal_name",
    "customer_address",
    "customer_country",
    "customer_tax_id",
    "payment_terms_days",
    "due_on",
    "tax_code",
    "tax_treatment",
    "tax_note",
)
LINE_COLUMNS = (
    "invoice_line_id",
    "invoice_id",
    "invoice_number",
    "status",
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
    "corrects_invoice_id",
    "corrects_line_id",
    "instrument_id",
    "base_amount",
    "rate_percent",
    "tax_code",
)
TIER_COLUMNS = (
    "invoice_line_id",
    "invoice_id",
    "tier_number",
    "lower_bound",
    "upper_bound",
    "unit_price",
    "tier_quantity",
    "flat_fee_charged",
    "amount_unrounded",
)
CREDIT_NOTE_COLUMNS = (
    "credit_note_id",
    "credit_note_number",
    "invoice_id",
    "invoice_number",
    "issuer_id",
    "account_id",
    "currency",
    "minor_units",
    "period_start",
    "period_end",
    "issued_on",
    "reason",
    "line_count",
    "total",
    "total_minor",
    "tax_total",
    "customer_legal_name",
    "customer_address",
    "customer_country",
    "customer_tax_id",
    "tax_code",
    "tax_treatment",
    "tax_note",
)
CREDIT_NOTE_LINE_COLUMNS = (
    "credit_note_line_id",
    "credit_note_id",
    "credit_note_number",
    "line_number",
    "line_type",
    "invoice_id",
    "corrects_line_id",
    "account_id",
    "currency",
    "minor_units",
    "charge_id",
    "meter_code",
    "description",
    "amount",
    "amount_minor",
    "base_amount",
    "rate_percent",
    "tax_code",
)
ISSUER_COLUMNS = (
    "issuer_id",
    "legal_name",
    "address_line",
    "tax_id",
    "country_code",
    "locale",
    "payment_instructions",
)
USAGE_DAILY_COLUMNS = (
    "account_id",
    "period_start",
    "usage_day",
    "meter_code",
    "aggregation",
    "unit",
    "event_count",
    "sum_value",
    "max_value",
    "last_value",
    "unique_count",
)
USAGE_DAILY_BY_DIMENSION_COLUMNS = (
    *USAGE_DAILY_COLUMNS[:4],
    "dimension_key",
    "dimension_value",
    *USAGE_DAILY_COLUMNS[4:],
)


def fetch_rows(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[str, ...],
    order_by: str,
    where: str = "true",
    params: list | None = None,
) -> list[dict]:
    cursor = connection.execute(
        f"select {', '.join(columns)} from {table} where {where} order by {order_by}", params or []
    )
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def fetch_invoices(connection: duckdb.DuckDBPyConnection, where: str = "true", params=None):
    return fetch_rows(
        connection,
        "billing.fct_invoices",
        INVOICE_COLUMNS,
        "period_start, invoice_id",
        where,
        params,
    )


def fetch_invoice_lines(connection: duckdb.DuckDBPyConnection, where: str = "true", params=None):
    return fetch_rows(
        connection,
        "billing.fct_invoice_lines",
        LINE_COLUMNS,
        "period_start, invoice_id, line_number",
        where,
        params,
    )


def fetch_invoice_line_tiers(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params=None
):
    return fetch_rows(
        connection,
        "billing.fct_invoice_line_tiers",
        TIER_COLUMNS,
        "invoice_id, invoice_line_id, tier_number",
        where,
        params,
    )


def fetch_credit_notes(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params=None
) -> list[dict]:
    return fetch_rows(
        connection,
        "billing.fct_credit_notes",
        CREDIT_NOTE_COLUMNS,
        "issued_on, credit_note_id",
        where,
        params,
    )


def fetch_credit_note_lines(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params=None
) -> list[dict]:
    return fetch_rows(
        connection,
        "billing.fct_credit_note_lines",
        CREDIT_NOTE_LINE_COLUMNS,
        "credit_note_id, line_number",
        where,
        params,
    )


def fetch_issuers(connection: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    return {
        row["issuer_id"]: row
        for row in fetch_rows(connection, "reference.issuers", ISSUER_COLUMNS, "issuer_id")
    }


def fetch_usage_daily(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params=None
) -> list[dict]:
    return fetch_rows(
        connection,
        "billing.fct_usage_daily",
        USAGE_DAILY_COLUMNS,
        "account_id, usage_day, meter_code",
        where,
        params,
    )


def fetch_usage_daily_by_dimension(
    connection: duckdb.DuckDBPyConnection, where: str = "true", params=None
) -> list[dict]:
    return fetch_rows(
        connection,
        "billing.fct_usage_daily_by_dimension",
        USAGE_DAILY_BY_DIMENSION_COLUMNS,
        "account_id, usage_day, meter_code, dimension_value",
        where,
        params,
    )
