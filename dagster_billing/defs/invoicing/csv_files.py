"""The CSV files of the exports, without Dagster: invoices, invoice lines and credit notes per
billing period, usage per account and period (meter totals, and per dimension value for meters
that have one). Exact decimal strings; byte-stable for the same data. Written through
`lib.csv_safe`, so no cell is a spreadsheet formula. The export assets (exports.py) write them for
every account into $BILLING_DATA_DIR/exports/; the customer portal writes the same files for one
account's documents from the published snapshot."""

from collections import defaultdict
from pathlib import Path

from dagster_billing.defs.invoicing.queries import (
    USAGE_DAILY_BY_DIMENSION_COLUMNS,
    USAGE_DAILY_COLUMNS,
)
from dagster_billing.lib.csv_safe import write_csv
from dagster_billing.lib.money import format_decimal, format_money

INVOICE_CSV_COLUMNS = (
    "invoice_id",
    "invoice_number",
    "status",
    "issuer_id",
    "account_id",
    "account_name",
    "customer_legal_name",
    "customer_country",
    "customer_tax_id",
    "period_start",
    "period_end",
    "plan_code",
    "plan_version",
    "currency",
    "line_count",
    "subtotal",
    "discount_total",
    "tax_total",
    "credits_applied",
    "total",
    "issued_on",
    "payment_terms_days",
    "due_on",
    "tax_code",
    "tax_treatment",
    "recalculated_at",
)
LINE_CSV_COLUMNS = (
    "invoice_id",
    "invoice_number",
    "status",
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
    "base_amount",
    "rate_percent",
    "tax_code",
    "amount",
    "corrects_invoice_id",
    "instrument_id",
)
CREDIT_NOTE_CSV_COLUMNS = (
    "credit_note_id",
    "credit_note_number",
    "invoice_id",
    "invoice_number",
    "issuer_id",
    "account_id",
    "customer_legal_name",
    "customer_tax_id",
    "currency",
    "issued_on",
    "reason",
    "line_count",
    "tax_code",
    "tax_total",
    "total",
)
CREDIT_NOTE_LINE_CSV_COLUMNS = (
    "credit_note_id",
    "credit_note_number",
    "line_number",
    "line_type",
    "invoice_id",
    "corrects_line_id",
    "charge_id",
    "meter_code",
    "description",
    "base_amount",
    "rate_percent",
    "tax_code",
    "amount",
)
# A usage file is one account's billing period: those two columns are in its path.
USAGE_CSV_COLUMNS = tuple(c for c in USAGE_DAILY_COLUMNS if c not in ("account_id", "period_start"))
USAGE_BY_DIMENSION_CSV_COLUMNS = tuple(
    c for c in USAGE_DAILY_BY_DIMENSION_COLUMNS if c not in ("account_id", "period_start")
)
MONEY_COLUMNS = {"subtotal", "discount_total", "tax_total", "credits_applied", "total", "amount"}
DECIMAL_COLUMNS = {
    "quantity",
    "unit_price",
    "base_amount",
    "rate_percent",
    "sum_value",
    "max_value",
    "last_value",
}


def _csv_value(column: str, row: dict) -> str:
    value = row[column]
    if value is None:
        return ""
    if column in MONEY_COLUMNS:
        return format_money(value, row["minor_units"])
    if column in DECIMAL_COLUMNS:
        return format_decimal(value)
    return str(value)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    return write_csv(
        path, columns, ([_csv_value(column, row) for column in columns] for row in rows)
    )


def _by_month(rows: list[dict], date_column: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row[date_column].strftime("%Y-%m")].append(row)
    return grouped


def write_invoice_exports(invoices: list[dict], lines: list[dict], exports_dir: Path) -> list[Path]:
    """invoices/<YYYY-MM>/invoices.csv and invoice_lines.csv, one folder per billing period."""
    invoices_by_period = _by_month(invoices, "period_start")
    lines_by_period = _by_month(lines, "period_start")
    written = []
    for period in sorted(invoices_by_period.keys() | lines_by_period.keys()):
        folder = exports_dir / "invoices" / period
        written.append(
            _write_csv(
                folder / "invoices.csv", INVOICE_CSV_COLUMNS, invoices_by_period.get(period, [])
            )
        )
        written.append(
            _write_csv(
                folder / "invoice_lines.csv", LINE_CSV_COLUMNS, lines_by_period.get(period, [])
            )
        )
    return written


def write_credit_note_exports(
    credit_notes: list[dict], lines: list[dict], exports_dir: Path
) -> list[Path]:
    """credit_notes/<YYYY-MM issued>/credit_notes.csv and credit_note_lines.csv."""
    month_of_note = {
        note["credit_note_id"]: note["issued_on"].strftime("%Y-%m") for note in credit_notes
    }
    notes_by_month = _by_month(credit_notes, "issued_on")
    lines_by_month: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        lines_by_month[month_of_note[line["credit_note_id"]]].append(line)
    written = []
    for month in sorted(notes_by_month):
        folder = exports_dir / "credit_notes" / month
        written.append(
            _write_csv(folder / "credit_notes.csv", CREDIT_NOTE_CSV_COLUMNS, notes_by_month[month])
        )
        written.append(
            _write_csv(
                folder / "credit_note_lines.csv",
                CREDIT_NOTE_LINE_CSV_COLUMNS,
                lines_by_month[month],
            )
        )
    return written


def write_usage_exports(
    usage: list[dict], by_dimension: list[dict], exports_dir: Path
) -> list[Path]:
    """usage/<YYYY-MM>/<account_id>.csv: each account's usage per UTC day and meter (all
    dimension values together, so columns sum to totals), and <account_id>.by_dimension.csv per
    dimension value of the meters that have one (model, region)."""
    written = []
    for rows, suffix, columns in (
        (usage, "", USAGE_CSV_COLUMNS),
        (by_dimension, ".by_dimension", USAGE_BY_DIMENSION_CSV_COLUMNS),
    ):
        by_file: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for row in rows:
            by_file[(row["period_start"].strftime("%Y-%m"), row["account_id"])].append(row)
        written += [
            _write_csv(exports_dir / "usage" / period / f"{account}{suffix}.csv", columns, group)
            for (period, account), group in sorted(by_file.items())
        ]
    return sorted(written)
