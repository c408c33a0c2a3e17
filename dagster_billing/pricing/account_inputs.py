"""Input files of `billing price` about accounts' billing lifecycle: coupons, prepaid credit
grants and billing cycles, written as the seeds the pipeline reads (coupons.csv,
credit_grants.csv, billing_cycles.csv). A row that cannot be used is a problem of its account,
which is then left out of the batch: pricing it without its coupon or credits would bill a
wrong amount.

Formats (CSV, JSON or YAML lists; NDJSON too), fields as the seeds:
  coupons         account_id, coupon_type (percentage | fixed), percent_off or amount_off,
                  [max_discount], [valid_from], [valid_to], [coupon_id], [currency], [description]
  credits         account_id, amount, [priority], [granted_on], [expires_on], [meter_code],
                  [fee_type: subscription | usage | commitment], [grant_id], [currency],
                  [description]
  billing cycles  account_id, [billing_interval: week | month | quarter | year], and
                  [anchor_date] (anniversary: periods from that date) or [anchor_day] (1-28);
                  an account on a plan of another interval than month and without a row gets
                  a calendar cycle of its plan's interval
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dagster_billing.pricing.inputs import InputError, InputProblem, records, text

FEE_TYPES = ("subscription", "usage", "commitment")
INTERVALS = ("week", "month", "quarter", "year")
MAX_AMOUNT = Decimal(10) ** 12


def _decimal(value: str, *, places: int = 4, upper: Decimal = MAX_AMOUNT) -> str:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0 or number >= upper:
        raise ValueError(f"{value} must be >= 0 and below {upper:,}")
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"{value} has more than {places} decimal places")
    return format(number, "f")


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _integer(value: str, low: int, high: int) -> str:
    if not value.lstrip("-").isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
    return str(int(value))


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[str], str] = str
    required: bool = False


@dataclass(frozen=True)
class AccountTable:
    """A seed of per-account rows: its columns, how each is read, and its id column."""

    seed: str
    columns: tuple[Field, ...]
    id_column: str | None = None

    def rows(
        self, source: Path, accounts: dict[str, str]
    ) -> tuple[list[dict[str, str]], list[InputProblem]]:
        rows, problems = [], []
        for number, record in enumerate(records(source), start=1):
            account_id = text(record.get("account_id"))
            where = f"{source}: row {number}"
            try:
                rows.append(self._row(record, number, account_id, accounts))
            except ValueError as error:
                problems.append(InputProblem(f"{where}: {error}", account_id or None))
        return rows, problems

    def _row(
        self, record: dict[str, Any], number: int, account_id: str, accounts: dict[str, str]
    ) -> dict[str, str]:
        if account_id not in accounts:
            raise ValueError(f"unknown account {account_id!r}")
        row = {}
        for column in self.columns:
            value = text(record.get(column.name))
            if not value:
                if column.required:
                    raise ValueError(f"{column.name} is required")
                row[column.name] = ""
                continue
            try:
                row[column.name] = column.parse(value)
            except ValueError as error:
                raise ValueError(f"{column.name}: {error}") from None
        if "currency" in row:
            row["currency"] = row["currency"].upper() or accounts[account_id]
            if row["currency"] != accounts[account_id]:
                raise ValueError(
                    f"currency {row['currency']} is not the account's ({accounts[account_id]})"
                )
        if self.id_column and not row[self.id_column]:
            row[self.id_column] = f"{self.seed.removesuffix('s')}_{account_id}_{number}"
        return row


def _coupon_checks(row: dict[str, str]) -> None:
    if row["coupon_type"] == "percentage" and not row["percent_off"]:
        raise ValueError("a percentage coupon needs percent_off")
    if row["coupon_type"] == "fixed" and not row["amount_off"]:
        raise ValueError("a fixed coupon needs amount_off")


def _credit_checks(row: dict[str, str]) -> None:
    if row["meter_code"] and row["fee_type"]:
        raise ValueError("a grant is restricted to a meter or to a fee type, not both")


COUPONS = AccountTable(
    "coupons",
    (
        Field("coupon_id"),
        Field("account_id", required=True),
        Field("coupon_type", _choice("percentage", "fixed"), required=True),
        Field("currency"),
        Field("amount_off", _decimal),
        Field("percent_off", lambda value: _decimal(value, places=10, upper=Decimal(101))),
        Field("max_discount", _decimal),
        Field("valid_from", _date),
        Field("valid_to", _date),
        Field("description"),
    ),
    id_column="coupon_id",
)
CREDITS = AccountTable(
    "credit_grants",
    (
        Field("grant_id"),
        Field("account_id", required=True),
        Field("currency"),
        Field("amount", _decimal, required=True),
        Field("priority", lambda value: _integer(value, 0, 1_000_000)),
        Field("granted_on", _date),
        Field("expires_on", _date),
        Field("meter_code"),
        Field("description"),
        Field("fee_type", _choice(*FEE_TYPES)),
    ),
    id_column="grant_id",
)


def _cycle_checks(row: dict[str, str]) -> None:
    if row["anchor_day"] and row["anchor_date"]:
        raise ValueError("a cycle has an anchor_date (anniversary) or an anchor_day, not both")
    if (
        row["anchor_date"]
        and row["billing_interval"] != "week"
        and int(row["anchor_date"][8:]) > 28
    ):
        raise ValueError(
            f"anchor_date: {row['anchor_date']} is on day 29-31, which some months do not have"
        )


BILLING_CYCLES = AccountTable(
    "billing_cycles",
    (
        Field("account_id", required=True),
        Field("anchor_day", lambda value: _integer(value, 1, 28)),
        Field("billing_interval", _choice(*INTERVALS)),
        Field("anchor_date", _date),
    ),
)
ROW_CHECKS = {
    "coupons": _coupon_checks,
    "credit_grants": _credit_checks,
    "billing_cycles": _cycle_checks,
}
DEFAULTS = {
    "coupons": {"valid_from": "2000-01-01"},
    "credit_grants": {"priority": "0", "granted_on": "2000-01-01"},
    "billing_cycles": {"billing_interval": "month"},
}


def write_account_table(
    table: AccountTable,
    source: Path,
    seeds_dir: Path,
    accounts: dict[str, str],
    meters: set[str],
) -> list[InputProblem]:
    """The seed CSV of the table from the input file (its header as the seed in seeds_dir
    has it); a problem for every row that cannot be used, and the row is left out."""
    rows, problems = table.rows(source, accounts)
    kept = []
    for row in rows:
        for column, default in DEFAULTS.get(table.seed, {}).items():
            row[column] = row[column] or default
        try:
            ROW_CHECKS.get(table.seed, lambda row: None)(row)
            if row.get("meter_code") and row["meter_code"] not in meters:
                raise ValueError(f"meter_code: unknown meter {row['meter_code']!r}")
        except ValueError as error:
            problems.append(InputProblem(f"{source}: {error}", row["account_id"]))
            continue
        kept.append(row)
    if table.id_column:
        seen: set[str] = set()
        for row in kept:
            if row[table.id_column] in seen:
                problems.append(
                    InputProblem(
                        f"{source}: {table.id_column} {row[table.id_column]!r} is listed twice",
                        row["account_id"],
                    )
                )
            seen.add(row[table.id_column])
    elif len({row["account_id"] for row in kept}) != len(kept):
        for account_id in sorted({row["account_id"] for row in kept}):
            if sum(row["account_id"] == account_id for row in kept) > 1:
                problems.append(
                    InputProblem(f"{source}: account {account_id!r} is listed twice", account_id)
                )
    target = seeds_dir / f"{table.seed}.csv"
    header = target.read_text().splitlines()[0].split(",")
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows({column: row.get(column, "") for column in header} for row in kept)
    return problems


def complete_billing_cycles(
    seeds_dir: Path, intervals: dict[str, set[str]], source: Path
) -> list[InputProblem]:
    """Every account on a plan billed by another interval than the calendar month gets a
    calendar cycle of that interval unless the billing cycles file gives it one; a cycle whose
    interval is not its plans' (or plans of several intervals) is a problem of the account."""
    path = seeds_dir / f"{BILLING_CYCLES.seed}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames or [], list(reader)
    cycles = {row["account_id"]: row for row in rows}
    problems = []
    for account_id, plan_intervals in sorted(intervals.items()):
        cycle = cycles.get(account_id)
        interval = cycle["billing_interval"] if cycle else "month"
        if len(plan_intervals) > 1:
            problems.append(
                InputProblem(
                    f"{source}: account {account_id!r} is on plans billed by "
                    f"{' and '.join(sorted(plan_intervals))}: one billing cycle per account",
                    account_id,
                )
            )
        elif cycle is None and plan_intervals != {"month"}:
            cycles[account_id] = {
                "account_id": account_id,
                "anchor_day": "",
                "billing_interval": next(iter(plan_intervals)),
                "anchor_date": "",
            }
        elif plan_intervals != {interval}:
            problems.append(
                InputProblem(
                    f"{source}: account {account_id!r} bills by {interval} but its plan by "
                    f"{next(iter(plan_intervals))}",
                    account_id,
                )
            )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(cycles.values())
    return problems


def drop_accounts(seeds_dir: Path, accounts: set[str]) -> None:
    """Leave the failed accounts' rows out of the account seeds written above."""
    for table in (COUPONS, CREDITS, BILLING_CYCLES):
        path = seeds_dir / f"{table.seed}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames or [], list(reader)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(row for row in rows if row["account_id"] not in accounts)


__all__ = [
    "BILLING_CYCLES",
    "COUPONS",
    "CREDITS",
    "InputError",
    "drop_accounts",
    "write_account_table",
]
