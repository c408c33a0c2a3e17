"""Invoice CSV exports for finance: one folder per billing period, exact decimal strings."""

import csv
from collections import defaultdict
from pathlib import Path

import dagster as dg

from dagster_billing.defs.invoicing.queries import fetch_invoice_lines, fetch_invoices
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.money import format_decimal, format_money

INVOICES_KEY = dg.AssetKey(["billing", "fct_invoices"])
LINES_KEY = dg.AssetKey(["billing", "fct_invoice_lines"])

INVOICE_CSV_COLUMNS = (
    "invoice_id",
    "account_id",
    "account_name",
    "period_start",
    "period_end",
    "plan_code",
    "plan_version",
    "currency",
    "line_count",
    "subtotal",
    "total",
)
LINE_CSV_COLUMNS = (
    "invoice_id",
    "line_number",
    "line_type",
    "account_id",
    "period_start",
    "period_end",
    "currency",
    "charge_id",
    "meter_code",
    "dimension_value",
    "pricing_model",
    "description",
    "quantity",
    "unit_price",
    "amount",
)
MONEY_COLUMNS = {"subtotal", "total", "amount"}
DECIMAL_COLUMNS = {"quantity", "unit_price"}


def _csv_value(column: str, row: dict) -> str:
    value = row[column]
    if column in MONEY_COLUMNS:
        return format_money(value, row["minor_units"])
    if column in DECIMAL_COLUMNS:
        return format_decimal(value)
    return "" if value is None else str(value)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_value(column, row) for column in columns] for row in rows)


def write_invoice_exports(invoices: list[dict], lines: list[dict], exports_dir: Path) -> list[Path]:
    """invoices/<YYYY-MM>/invoices.csv and invoice_lines.csv; byte-stable for the same data."""
    by_period: dict[str, tuple[list[dict], list[dict]]] = defaultdict(lambda: ([], []))
    for invoice in invoices:
        by_period[invoice["period_start"].strftime("%Y-%m")][0].append(invoice)
    for line in lines:
        by_period[line["period_start"].strftime("%Y-%m")][1].append(line)
    written = []
    for period, (period_invoices, period_lines) in sorted(by_period.items()):
        folder = exports_dir / "invoices" / period
        _write_csv(folder / "invoices.csv", INVOICE_CSV_COLUMNS, period_invoices)
        _write_csv(folder / "invoice_lines.csv", LINE_CSV_COLUMNS, period_lines)
        written += [folder / "invoices.csv", folder / "invoice_lines.csv"]
    return written


@dg.asset(
    key=["exports", "invoice_csv"],
    deps=[INVOICES_KEY, LINES_KEY],
    group_name="exports",
    kinds={"csv"},
    pool=DUCKDB_POOL,
)
def invoice_csv_exports(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """Invoices and invoice lines as CSV, one folder per billing period, for finance."""
    with warehouse.connect(read_only=True) as connection:
        invoices = fetch_invoices(connection)
        lines = fetch_invoice_lines(connection)
    written = write_invoice_exports(invoices, lines, warehouse.exports_dir)
    context.log.info(f"wrote {len(written)} files under {warehouse.exports_dir}")
    return dg.MaterializeResult(
        metadata={
            "invoices": dg.MetadataValue.int(len(invoices)),
            "lines": dg.MetadataValue.int(len(lines)),
            "directory": dg.MetadataValue.path(str(warehouse.exports_dir / "invoices")),
            "files": dg.MetadataValue.json(
                [str(p.relative_to(warehouse.exports_dir)) for p in written]
            ),
        }
    )
