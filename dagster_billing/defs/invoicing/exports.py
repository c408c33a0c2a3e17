"""CSV exports for finance and customers: invoices, invoice lines and credit notes per billing
period, usage per account and period (meter totals, and per dimension value for meters that have
one). The files' columns and formatting are csv_files.py (no Dagster import: the customer portal
writes the same files for one account)."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from dagster_billing.defs import groups
from dagster_billing.defs.invoicing.csv_files import (
    refresh_usage_exports,
    write_credit_note_exports,
    write_invoice_exports,
)
from dagster_billing.defs.invoicing.queries import (
    fetch_credit_note_lines,
    fetch_credit_notes,
    fetch_invoice_lines,
    fetch_invoices,
)
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

INVOICES_KEY = dg.AssetKey(["billing", "fct_invoices"])
LINES_KEY = dg.AssetKey(["billing", "fct_invoice_lines"])
CREDIT_NOTES_KEY = dg.AssetKey(["billing", "fct_credit_notes"])
CREDIT_NOTE_LINES_KEY = dg.AssetKey(["billing", "fct_credit_note_lines"])
USAGE_DAILY_KEY = dg.AssetKey(["billing", "fct_usage_daily"])
USAGE_DAILY_BY_DIMENSION_KEY = dg.AssetKey(["billing", "fct_usage_daily_by_dimension"])


def _export_result(
    warehouse: BillingWarehouse, written: list[Path], folder: str, **counts: int
) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.int(count) for name, count in counts.items()},
            "directory": dg.MetadataValue.path(str(warehouse.exports_dir / folder)),
            "files": dg.MetadataValue.json(
                [str(p.relative_to(warehouse.exports_dir)) for p in written]
            ),
        }
    )


def _read(warehouse: BillingWarehouse, *fetchers: Callable) -> list[list[dict]]:
    with warehouse.connect(read_only=True) as connection:
        return [fetch(connection) for fetch in fetchers]


@dg.asset(
    key=["exports", "invoice_csv"],
    deps=[INVOICES_KEY, LINES_KEY, CREDIT_NOTES_KEY, CREDIT_NOTE_LINES_KEY],
    group_name=groups.EXPORTS,
    kinds={"csv"},
    pool=DUCKDB_POOL,
)
def invoice_csv_exports(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """Invoices (draft and final) and their lines per billing period, credit notes per month issued."""
    invoices, lines, credit_notes, credit_note_lines = _read(
        warehouse, fetch_invoices, fetch_invoice_lines, fetch_credit_notes, fetch_credit_note_lines
    )
    written = write_invoice_exports(invoices, lines, warehouse.exports_dir)
    written += write_credit_note_exports(credit_notes, credit_note_lines, warehouse.exports_dir)
    context.log.info(f"wrote {len(written)} files under {warehouse.exports_dir}")
    return _export_result(
        warehouse,
        written,
        "invoices",
        invoices=len(invoices),
        lines=len(lines),
        credit_notes=len(credit_notes),
    )


@dg.asset(
    key=["exports", "usage_csv"],
    deps=[USAGE_DAILY_KEY, USAGE_DAILY_BY_DIMENSION_KEY],
    group_name=groups.EXPORTS,
    kinds={"csv"},
    pool=DUCKDB_POOL,
)
def usage_csv_exports(warehouse: BillingWarehouse) -> dg.MaterializeResult:
    """Per-account usage by UTC day and meter (and per dimension value), per billing period.
    Only the files whose rows changed are rewritten (csv_files.refresh_usage_exports)."""
    with warehouse.connect(read_only=True) as connection:
        written, unchanged = refresh_usage_exports(connection, warehouse.exports_dir)
    return _export_result(warehouse, written, "usage", unchanged_files=unchanged)
