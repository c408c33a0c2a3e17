"""Asset checks finance relies on, computed independently of the dbt tests that assert the same."""

from collections import defaultdict
from decimal import Decimal

import dagster as dg

from dagster_billing.defs.invoicing.exports import INVOICES_KEY
from dagster_billing.defs.invoicing.queries import fetch_invoice_lines, fetch_invoices
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

OUTCOMES_KEY = dg.AssetKey(["billing", "fct_usage_event_outcomes"])


@dg.asset_check(asset=OUTCOMES_KEY, blocking=True, pool=DUCKDB_POOL)
def nothing_lost(warehouse: BillingWarehouse) -> dg.AssetCheckResult:
    """raw = accepted + duplicates + quarantined: rows read from landed files equal classified rows."""
    with warehouse.connect(read_only=True) as connection:
        raw_rows = connection.execute(
            "select coalesce(sum(row_count), 0) from raw.landed_files"
        ).fetchone()[0]
        by_outcome = dict(
            connection.execute(
                "select outcome, count(*) from billing.fct_usage_event_outcomes group by outcome"
            ).fetchall()
        )
        by_reason = dict(
            connection.execute(
                """
                select reason, count(*) from billing.fct_usage_event_outcomes
                where outcome = 'quarantined' group by reason order by reason
                """
            ).fetchall()
        )
    accepted = by_outcome.get("accepted", 0)
    duplicates = by_outcome.get("duplicate", 0)
    quarantined = by_outcome.get("quarantined", 0)
    unknown = sum(
        count
        for outcome, count in by_outcome.items()
        if outcome not in ("accepted", "duplicate", "quarantined")
    )
    return dg.AssetCheckResult(
        passed=raw_rows == accepted + duplicates + quarantined and unknown == 0,
        metadata={
            "raw": raw_rows,
            "accepted": accepted,
            "duplicates": duplicates,
            "quarantined": quarantined,
            "quarantine_reasons": dg.MetadataValue.json(by_reason),
        },
    )


@dg.asset_check(asset=INVOICES_KEY, blocking=True, pool=DUCKDB_POOL)
def lines_sum_to_totals(warehouse: BillingWarehouse) -> dg.AssetCheckResult:
    """Every invoice total equals the exact Decimal sum of its lines, and every line is rounded."""
    with warehouse.connect(read_only=True) as connection:
        invoices = fetch_invoices(connection)
        lines = fetch_invoice_lines(connection)
    line_sums: dict[str, Decimal] = defaultdict(Decimal)
    unrounded = []
    for line in lines:
        line_sums[line["invoice_id"]] += line["amount"]
        if line["amount"] != line["amount"].quantize(Decimal(1).scaleb(-line["minor_units"])):
            unrounded.append(line["invoice_line_id"])
    mismatched = [
        invoice["invoice_id"]
        for invoice in invoices
        if line_sums[invoice["invoice_id"]] != invoice["total"]
    ]
    return dg.AssetCheckResult(
        passed=not mismatched and not unrounded,
        metadata={
            "invoices": len(invoices),
            "lines": len(lines),
            "mismatched_invoices": dg.MetadataValue.json(mismatched[:50]),
            "unrounded_lines": dg.MetadataValue.json(unrounded[:50]),
            "grand_total_by_currency": dg.MetadataValue.json(_totals_by_currency(invoices)),
        },
    )


def _totals_by_currency(invoices: list[dict]) -> dict[str, str]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        totals[invoice["currency"]] += invoice["total"]
    return {currency: f"{total:f}" for currency, total in sorted(totals.items())}
