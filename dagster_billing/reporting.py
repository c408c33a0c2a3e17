"""A short human summary of a pipeline run, read from the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_billing.lib.money import format_money


def render_summary(connection: duckdb.DuckDBPyConnection, exports_dir: Path) -> str:
    raw = connection.execute(
        "select coalesce(sum(row_count), 0), count(*) from raw.landed_files"
    ).fetchone()
    outcomes = dict(
        connection.execute(
            "select outcome, count(*) from billing.fct_usage_event_outcomes group by 1"
        ).fetchall()
    )
    reasons = connection.execute(
        """
        select reason, count(*) from billing.fct_usage_event_outcomes
        where outcome = 'quarantined' group by 1 order by 2 desc, 1
        """
    ).fetchall()
    invoices = connection.execute(
        """
        select strftime(period_start, '%Y-%m') as period, currency, min(minor_units),
               count(*), count(distinct account_id), sum(total),
               count(*) filter (where status = 'final')
        from billing.fct_invoices group by 1, 2 order by 1, 2
        """
    ).fetchall()
    lines = [
        f"Landed files: {raw[1]}, rows: {raw[0]:,}",
        "  accepted {:,} + duplicates {:,} + quarantined {:,} = {:,}".format(
            outcomes.get("accepted", 0),
            outcomes.get("duplicate", 0),
            outcomes.get("quarantined", 0),
            sum(outcomes.values()),
        ),
        "  quarantine reasons: " + ", ".join(f"{reason} {count:,}" for reason, count in reasons),
        "Invoices:",
    ]
    for period, currency, minor_units, count, accounts, total, final in invoices:
        lines.append(
            f"  {period} {currency}: {count} invoices ({final} final) for {accounts} accounts, "
            f"total {format_money(total, minor_units)} {currency}"
        )
    lines.append(f"Invoice CSVs: {exports_dir / 'invoices'}")
    for path in sorted((exports_dir / "invoices").glob("*/*.csv")):
        lines.append(f"  {path}")
    return "\n".join(lines)
