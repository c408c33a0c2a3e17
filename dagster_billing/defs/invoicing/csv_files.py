"""The CSV files of the exports, without Dagster: invoices, invoice lines and credit notes per
billing period, usage per account and period (meter totals, and per dimension value for meters
that have one). Exact decimal strings; byte-stable for the same data. Written through
`lib.csv_safe`, so no cell is a spreadsheet formula. The export assets (exports.py) write them for
every account into $BILLING_DATA_DIR/exports/; the customer portal writes the same files for one
account's documents from the published snapshot."""

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import duckdb

from dagster_billing.defs.invoicing.queries import (
    USAGE_DAILY_BY_DIMENSION_COLUMNS,
    USAGE_DAILY_COLUMNS,
    fetch_usage_daily,
    fetch_usage_daily_by_dimension,
)
from dagster_billing.lib import csv_safe, money
from dagster_billing.lib.csv_safe import write_csv
from dagster_billing.lib.money import format_decimal, format_money

# exports/usage/<this>: what refresh_usage_exports last wrote, to skip the files whose rows
# have not changed since.
USAGE_FINGERPRINTS = ".fingerprints.json"

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
            _write_csv(exports_dir / "usage" / _usage_file(period, account, suffix), columns, group)
            for (period, account), group in sorted(by_file.items())
        ]
    return sorted(written)


def refresh_usage_exports(
    connection: duckdb.DuckDBPyConnection, exports_dir: Path
) -> tuple[list[Path], int]:
    """write_usage_exports for every account, rewriting only the files whose rows changed since
    the last refresh; (files written, files left as they were).

    A daily batch changes the open period's files: the closed periods' files stay, so the
    export's cost follows the periods a run touched, not history. Each file's rows get a
    fingerprint in one query (a sum of row hashes per account and period), kept in
    exports/usage/.fingerprints.json with the file's size and mtime. A file is rewritten when
    its fingerprint changed, when it is missing or was changed by hand, and every file when the
    formatting code or DuckDB (whose hash it is) changed."""
    folder = exports_dir / "usage"
    manifest_path = folder / USAGE_FINGERPRINTS
    format_key = _usage_format_key()
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    known = manifest.get("files", {}) if manifest.get("format") == format_key else {}
    wanted = _usage_fingerprints(connection)
    records = {
        name: _file_record(folder / name, fingerprint) for name, fingerprint in wanted.items()
    }
    stale = {
        name for name, record in records.items() if record is None or known.get(name) != record
    }
    periods = sorted({name.split("/")[0] for name in stale})
    written: list[Path] = []
    if periods:
        where = f"strftime(period_start, '%Y-%m') in ({', '.join('?' * len(periods))})"
        written = write_usage_exports(
            _rows_of(stale, "", fetch_usage_daily(connection, where, periods)),
            _rows_of(
                stale, ".by_dimension", fetch_usage_daily_by_dimension(connection, where, periods)
            ),
            exports_dir,
        )
    # Every stale file was just written (each has rows): only their records changed.
    records.update({name: _file_record(folder / name, wanted[name]) for name in stale})
    folder.mkdir(parents=True, exist_ok=True)
    staging = manifest_path.with_name(manifest_path.name + ".tmp")
    staging.write_text(json.dumps({"format": format_key, "files": records}, sort_keys=True))
    os.replace(staging, manifest_path)
    return written, len(wanted) - len(stale)


def _usage_fingerprints(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """usage/<period>/<account>[.by_dimension].csv (relative to usage/) -> its rows' fingerprint:
    the row count and the sum of the rows' hashes (order-free; a changed, added or removed row
    changes it)."""
    fingerprints = {}
    for table, suffix, columns in (
        ("billing.fct_usage_daily", "", USAGE_DAILY_COLUMNS),
        ("billing.fct_usage_daily_by_dimension", ".by_dimension", USAGE_DAILY_BY_DIMENSION_COLUMNS),
    ):
        rows = connection.execute(
            f"select strftime(period_start, '%Y-%m'), account_id, count(*), "
            f"sum(cast(hash({', '.join(columns)}) as hugeint)) from {table} group by all"
        ).fetchall()
        fingerprints.update(
            {
                _usage_file(period, account, suffix): f"{count}:{total}"
                for period, account, count, total in rows
            }
        )
    return fingerprints


def _rows_of(names: set[str], suffix: str, rows: list[dict]) -> list[dict]:
    """The rows that go into the files `names` (relative to usage/) with this suffix."""
    return [
        row
        for row in rows
        if _usage_file(f"{row['period_start']:%Y-%m}", row["account_id"], suffix) in names
    ]


def _usage_file(period: str, account: str, suffix: str) -> str:
    """An account's usage file of a period, relative to exports/usage/."""
    return f"{period}/{account}{suffix}.csv"


def _file_record(path: Path, fingerprint: str) -> list | None:
    """What the manifest holds for a written file: its rows' fingerprint, size and mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [fingerprint, stat.st_size, stat.st_mtime_ns]


def _usage_format_key() -> str:
    """The formatting code's and DuckDB's versions: a change to either rewrites every file."""
    digest = hashlib.sha256(duckdb.__version__.encode())
    for module in (csv_safe, money):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]
