"""What each portal page shows, as exact values read from one snapshot for one account.

Every query here filters on the account; every amount is the Decimal dbt computed and rounded
(nothing is re-derived: totals are the invoice's own columns, not Python sums). Formatting for
people (currency, locale) happens in the templates; these models are cached per snapshot and
account (PortalSnapshot.cached), so a page costs its queries once per publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal

import duckdb

from dagster_billing.analytics import published_tables
from dagster_billing.defs.invoicing.queries import (
    CREDIT_NOTE_COLUMNS,
    CREDIT_NOTE_LINE_COLUMNS,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    USAGE_DAILY_BY_DIMENSION_COLUMNS,
    USAGE_DAILY_COLUMNS,
    fetch_rows,
)
from dagster_billing.portal.snapshots import PortalSnapshot, rows

TREND_DAYS = (30, 90)
# The daily figure of a meter, by its aggregation (a unique count per day does not add up to the
# period's; the table says which figure it is).
DAILY_MEASURE = """
    case aggregation
        when 'count' then cast(event_count as decimal(38, 10))
        when 'unique_count' then cast(unique_count as decimal(38, 10))
        when 'max' then max_value
        when 'latest' then last_value
        else sum_value
    end
"""
MEASURE_LABELS = {
    "count": "events",
    "unique_count": "distinct values that day",
    "max": "maximum that day",
    "latest": "last value that day",
    "time_weighted_sum": "time-weighted sum",
    "sum": "sum",
}
USAGE_LINE_TYPES = ("charge",)


@dataclass(frozen=True)
class Account:
    account_id: str
    account_name: str | None
    currency: str | None
    minor_units: int | None


def account(snapshot: PortalSnapshot, account_id: str) -> Account:
    def compute() -> Account:
        with snapshot.cursor() as cursor:
            found = rows(
                cursor,
                "select account_name, currency, minor_units from billing.fct_invoices "
                "where account_id = ? order by period_start desc limit 1",
                [account_id],
            )
        first = found[0] if found else {}
        return Account(
            account_id,
            first.get("account_name"),
            first.get("currency"),
            first.get("minor_units"),
        )

    return snapshot.cached(("account", account_id), compute)


def _invoices(cursor: duckdb.DuckDBPyConnection, account_id: str) -> list[dict]:
    return fetch_rows(
        cursor,
        "billing.fct_invoices",
        INVOICE_COLUMNS,
        "period_start desc",
        "account_id = ?",
        [account_id],
    )


def _lines(cursor: duckdb.DuckDBPyConnection, invoice_id: str) -> list[dict]:
    return fetch_rows(
        cursor,
        "billing.fct_invoice_lines",
        LINE_COLUMNS,
        "line_number",
        "invoice_id = ?",
        [invoice_id],
    )


def _current_and_previous(invoices: list[dict]) -> tuple[dict | None, dict | None]:
    """The open period's draft (the newest one), else the newest invoice; and the one before."""
    if not invoices:
        return None, None
    drafts = [invoice for invoice in invoices if invoice["status"] == "draft"]
    current = drafts[0] if drafts else invoices[0]
    earlier = [i for i in invoices if i["period_start"] < current["period_start"]]
    return current, (earlier[0] if earlier else None)


def usage(snapshot: PortalSnapshot, account_id: str) -> dict:
    """The current period: the invoice as rated so far (usage lines by meter and dimension with
    their amounts, every other line, the totals) and the run-rate estimate."""

    def compute() -> dict:
        with snapshot.cursor() as cursor:
            current, _ = _current_and_previous(_invoices(cursor, account_id))
            if current is None:
                return {"invoice": None}
            lines = _lines(cursor, current["invoice_id"])
            events = dict(
                cursor.execute(
                    "select invoice_line_id, sum(event_count) from billing.fct_rated_usage "
                    "where account_id = ? and invoice_id = ? group by invoice_line_id",
                    [account_id, current["invoice_id"]],
                ).fetchall()
            )
            breakdown = rows(
                cursor,
                """
                select meter_code, dimension_key, dimension_value, any_value(aggregation) as aggregation,
                       sum(event_count) as event_count,
                       case when any_value(aggregation) in ('sum', 'time_weighted_sum') then sum(sum_value)
                            when any_value(aggregation) = 'count' then sum(event_count) end as quantity
                from billing.fct_usage_daily_by_dimension
                where account_id = ? and period_start = ?
                group by meter_code, dimension_key, dimension_value
                order by meter_code, dimension_value
                """,
                [account_id, current["period_start"]],
            )
        usage_lines = [
            line | {"event_count": events.get(line["invoice_line_id"])}
            for line in lines
            if line["line_type"] in USAGE_LINE_TYPES
        ]
        # Per-value usage of meters billed as one line ('*'), e.g. GPU seconds by region.
        billed_per_value = {
            line["meter_code"] for line in usage_lines if line["dimension_value"] != "*"
        }
        by_dimension: dict[str, list[dict]] = {}
        for row in breakdown:
            if row["meter_code"] not in billed_per_value:
                by_dimension.setdefault(row["meter_code"], []).append(row)
        return {
            "invoice": current,
            "usage_lines": usage_lines,
            "other_lines": [line for line in lines if line["line_type"] not in USAGE_LINE_TYPES],
            "by_dimension": by_dimension,
        }

    return snapshot.cached(("usage", account_id), compute)


def trends(snapshot: PortalSnapshot, account_id: str, days: int) -> dict:
    """Daily usage per meter over the last `days` days up to the snapshot's clock, and this
    period against the last one (usage to the same day of the period, and charges by meter)."""

    def compute() -> dict:
        last_day = snapshot.clock.date()
        first_day = last_day - timedelta(days=days - 1)
        with snapshot.cursor() as cursor:
            daily = rows(
                cursor,
                f"""
                select meter_code, any_value(unit) as unit, any_value(aggregation) as aggregation,
                       list({{'day': usage_day, 'value': {DAILY_MEASURE}}} order by usage_day) as points
                from billing.fct_usage_daily
                where account_id = ? and usage_day between ? and ?
                group by meter_code
                order by meter_code
                """,
                [account_id, first_day, last_day],
            )
            current, previous = _current_and_previous(_invoices(cursor, account_id))
            comparison = _comparison(cursor, account_id, current, previous)
        calendar = [first_day + timedelta(days=offset) for offset in range(days)]
        meters = []
        for meter in daily:
            by_day = {point["day"]: point["value"] for point in meter["points"]}
            meters.append(
                {
                    "meter_code": meter["meter_code"],
                    "unit": meter["unit"],
                    "aggregation": meter["aggregation"],
                    "measure": MEASURE_LABELS.get(meter["aggregation"], meter["aggregation"]),
                    # A day without events is a day of zero usage.
                    "days": [(day, by_day.get(day, Decimal(0))) for day in calendar],
                }
            )
        return {
            "days": days,
            "first_day": first_day,
            "last_day": last_day,
            "meters": meters,
            "comparison": comparison,
        }

    return snapshot.cached(("trends", account_id, days), compute)


def _comparison(
    cursor: duckdb.DuckDBPyConnection, account_id: str, current: dict | None, previous: dict | None
) -> dict | None:
    """Charges by meter on the current invoice and the previous one (rounded line amounts), and
    each additive meter's usage this period against the previous period over the same number of
    days."""
    if current is None or previous is None:
        return None
    charges = rows(
        cursor,
        """
        select meter_code,
               sum(case when invoice_id = $current then amount end) as current_amount,
               sum(case when invoice_id = $previous then amount end) as previous_amount
        from billing.fct_invoice_lines
        where account_id = $account and invoice_id in ($current, $previous)
          and line_type = 'charge'
        group by meter_code
        order by meter_code
        """,
        {
            "account": account_id,
            "current": current["invoice_id"],
            "previous": previous["invoice_id"],
        },
    )
    # Whole UTC days of the current period up to the clock (the clock's own day included when it
    # is past midnight), compared with as many first days of the previous period.
    clock = current["recalculated_at"]
    through = clock.date() + timedelta(days=1 if clock.time() != time.min else 0)
    through = min(through, current["period_end"])
    elapsed_days = max((through - current["period_start"]).days, 0)
    usage_rows = rows(
        cursor,
        """
        select meter_code, any_value(unit) as unit,
               coalesce(sum(case when usage_day >= $current_start then quantity end), 0)
                   as current_quantity,
               coalesce(sum(case when usage_day < $previous_through then quantity end), 0)
                   as previous_quantity
        from (
            select meter_code, unit, usage_day,
                   case aggregation when 'count' then cast(event_count as decimal(38, 10))
                        else sum_value end as quantity
            from billing.fct_usage_daily
            where account_id = $account and aggregation in ('sum', 'count', 'time_weighted_sum')
              and usage_day >= $previous_start and usage_day < $through
        )
        group by meter_code
        order by meter_code
        """,
        {
            "account": account_id,
            "current_start": current["period_start"],
            "through": through,
            "previous_start": previous["period_start"],
            "previous_through": min(
                previous["period_start"] + timedelta(days=elapsed_days), previous["period_end"]
            ),
        },
    )
    return {
        "current": current,
        "previous": previous,
        "charges": charges,
        "elapsed_days": elapsed_days,
        "usage": usage_rows,
    }


def invoices(snapshot: PortalSnapshot, account_id: str) -> dict:
    def compute() -> dict:
        with snapshot.cursor() as cursor:
            return {
                "invoices": _invoices(cursor, account_id),
                "credit_notes": fetch_rows(
                    cursor,
                    "billing.fct_credit_notes",
                    CREDIT_NOTE_COLUMNS,
                    "issued_on desc, credit_note_id",
                    "account_id = ?",
                    [account_id],
                ),
            }

    return snapshot.cached(("invoices", account_id), compute)


def invoice(snapshot: PortalSnapshot, account_id: str, invoice_id: str) -> dict | None:
    """One invoice of the account with its lines, or None (unknown, or another account's)."""

    def compute() -> dict | None:
        with snapshot.cursor() as cursor:
            found = fetch_rows(
                cursor,
                "billing.fct_invoices",
                INVOICE_COLUMNS,
                "invoice_id",
                "account_id = ? and invoice_id = ?",
                [account_id, invoice_id],
            )
            if not found:
                return None
            return {"invoice": found[0], "lines": _lines(cursor, invoice_id)}

    return snapshot.cached(("invoice", account_id, invoice_id), compute)


def credit_note(snapshot: PortalSnapshot, account_id: str, credit_note_id: str) -> dict | None:
    def compute() -> dict | None:
        with snapshot.cursor() as cursor:
            found = fetch_rows(
                cursor,
                "billing.fct_credit_notes",
                CREDIT_NOTE_COLUMNS,
                "credit_note_id",
                "account_id = ? and credit_note_id = ?",
                [account_id, credit_note_id],
            )
            if not found:
                return None
            lines = fetch_rows(
                cursor,
                "billing.fct_credit_note_lines",
                CREDIT_NOTE_LINE_COLUMNS,
                "line_number",
                "account_id = ? and credit_note_id = ?",
                [account_id, credit_note_id],
            )
            return {"credit_note": found[0], "lines": lines}

    return snapshot.cached(("credit_note", account_id, credit_note_id), compute)


def usage_rows(snapshot: PortalSnapshot, account_id: str, period_start: date) -> tuple[list, list]:
    """The account's daily usage of one billing period, as the usage CSV export has it."""
    with snapshot.cursor() as cursor:
        daily = fetch_rows(
            cursor,
            "billing.fct_usage_daily",
            USAGE_DAILY_COLUMNS,
            "usage_day, meter_code",
            "account_id = ? and period_start = ?",
            [account_id, period_start],
        )
        by_dimension = fetch_rows(
            cursor,
            "billing.fct_usage_daily_by_dimension",
            USAGE_DAILY_BY_DIMENSION_COLUMNS,
            "usage_day, meter_code, dimension_value",
            "account_id = ? and period_start = ?",
            [account_id, period_start],
        )
    return daily, by_dimension


def credits(snapshot: PortalSnapshot, account_id: str) -> dict:
    """Prepaid credit: the balance per currency after the latest movement (draws by draft
    invoices included, provisionally), each movement, and the monthly roll-forward."""

    def compute() -> dict:
        with snapshot.cursor() as cursor:
            movements = rows(
                cursor,
                """
                select movement_id, grant_id, currency, movement_on, movement_type, invoice_id,
                       status, amount, grant_balance, account_balance
                from billing.fct_credit_movements
                where account_id = ?
                -- newest first, in the reverse of the order the running balance is summed in
                order by currency, movement_on desc,
                         case movement_type when 'granted' then 1 when 'drawn' then 2 else 3 end desc,
                         grant_id desc, invoice_id desc
                """,
                [account_id],
            )
            balances = rows(
                cursor,
                """
                select currency, month_start, opening_balance, granted, drawn, expired,
                       closing_balance,
                       row_number() over (partition by currency order by month_start desc) = 1
                           as is_latest
                from billing.fct_credit_balances
                where account_id = ?
                order by currency, month_start desc
                """,
                [account_id],
            )
        return {
            "balances": [row for row in balances if row["is_latest"]],
            "months": balances,
            "movements": movements,
        }

    return snapshot.cached(("credits", account_id), compute)


def alerts(snapshot: PortalSnapshot, account_id: str) -> dict:
    """Usage thresholds crossed (newest period first), the quotas of the open period, and the
    commitment true-up the open invoice carries so far (what would be added if the period ended
    at the snapshot's clock)."""

    def compute() -> dict:
        with snapshot.cursor() as cursor:
            crossed = rows(
                cursor,
                """
                select alert_id, meter_code, period_start, limit_quantity, alert_percent,
                       alert_quantity, crossed_hour, usage_at_crossing
                from billing.fct_usage_alerts
                where account_id = ?
                order by period_start desc, crossed_hour desc, alert_id
                """,
                [account_id],
            )
            current, _ = _current_and_previous(_invoices(cursor, account_id))
            quotas = []
            # A snapshot published before quotas existed has no table: no quotas to show.
            if current is not None and "billing.fct_usage_quotas" in published_tables(cursor):
                quotas = rows(
                    cursor,
                    """
                    select quota_id, meter_code, overage_policy, limit_quantity, used_quantity,
                           remaining_quantity, overage_quantity, is_exhausted, has_access
                    from billing.fct_usage_quotas
                    where account_id = ? and period_start = ?
                    order by meter_code, quota_id
                    """,
                    [account_id, current["period_start"]],
                )
            true_up = None
            if current is not None and current["status"] == "draft":
                found = rows(
                    cursor,
                    """
                    select base_amount as commitment, amount as true_up, currency, minor_units
                    from billing.fct_invoice_lines
                    where account_id = ? and invoice_id = ? and line_type = 'commitment_true_up'
                    """,
                    [account_id, current["invoice_id"]],
                )
                true_up = found[0] if found else None
        return {"crossed": crossed, "quotas": quotas, "current": current, "true_up": true_up}

    return snapshot.cached(("alerts", account_id), compute)


def alert_count(snapshot: PortalSnapshot, account_id: str) -> int:
    """Alerts of the open period (for the navigation badge)."""
    model = alerts(snapshot, account_id)
    current = model["current"]
    if current is None:
        return 0
    crossed = [a for a in model["crossed"] if a["period_start"] == current["period_start"]]
    exhausted = [q for q in model["quotas"] if q["is_exhausted"]]
    return len(crossed) + len(exhausted) + (1 if model["true_up"] else 0)
