"""`billing price` on a batch: 100 accounts, each on its own plan, priced in one run from
pre-aggregated quantities; every invoice is checked against an independent Decimal oracle."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_billing.cli import main
from dagster_billing.paths import SEEDS_DIR
from dagster_billing.pricing.inputs import read_meters, write_usage

ACCOUNTS = 100
PERIOD = "2026-01"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Case:
    account: str
    plan: str
    model: str
    calls: Decimal
    storage_gb_hours: Decimal
    seats: int
    gpt_tokens: int

    @property
    def price(self) -> Decimal:
        return Decimal("0.0001") * (int(self.plan[1:]) + 1)

    def plan_yaml(self) -> str:
        head = (
            f"code: {self.plan}\nversion: 1\nname: Plan {self.plan}\n"
            "effective_from: 2026-01-01\ncurrency: USD\ncharges:\n"
        )
        price = self.price
        if self.model == "per_unit":
            api = f"  - {{id: api, meter: api.requests, model: per_unit, unit_price: {price}}}\n"
        elif self.model in ("graduated", "volume"):
            api = (
                f"  - id: api\n    meter: api.requests\n    model: {self.model}\n    tiers:\n"
                f"      - {{up_to: 10000, unit_price: {price * 2}, flat_fee: 1}}\n"
                f"      - {{up_to: null, unit_price: {price}, flat_fee: 2}}\n"
            )
        else:
            api = (
                "  - {id: api, meter: api.requests, model: package, package_size: 1000, "
                f"package_price: {price * 1000}, free_units: 500}}\n"
            )
        return (
            head
            + api
            + "  - {id: storage, meter: storage.gb_hours, model: per_unit, unit_price: 0.000137}\n"
            + "  - {id: seats, meter: seats.active, model: seat, unit_price: 9.5, included_seats: 2}\n"
            + "  - id: tokens\n    meter: tokens.generated\n    model: matrix\n    dimension: model\n"
            + f"    prices: {{gpt-4o: {price / 100}}}\n"
        )

    def expected_total(self) -> Decimal:
        """The oracle: each line rounded half-up to cents, the total their sum."""
        price, calls = self.price, self.calls
        if self.model == "per_unit":
            api = calls * price
        elif self.model == "graduated":
            api = min(calls, Decimal(10000)) * price * 2 + 1
            if calls > 10000:
                api += (calls - 10000) * price + 2
        elif self.model == "volume":
            api = calls * price * 2 + 1 if calls <= 10000 else calls * price + 2
        else:
            api = math.ceil(max(calls - 500, 0) / 1000) * price * 1000
        lines = [
            api,
            self.storage_gb_hours * Decimal("0.000137"),
            max(self.seats - 2, 0) * Decimal("9.5"),
            self.gpt_tokens * price / 100,
        ]
        return sum((line.quantize(CENT, rounding=ROUND_HALF_UP) for line in lines), Decimal(0))


MODELS = ("per_unit", "graduated", "volume", "package")


def _cases() -> list[Case]:
    return [
        Case(
            account=f"acct_{index:03d}",
            plan=f"p{index:03d}",
            model=MODELS[index % len(MODELS)],
            calls=Decimal(1234 * index + (5 if index % 3 else 0)) + Decimal("0.5") * (index % 2),
            storage_gb_hours=Decimal(index * 10) + Decimal("0.25"),
            seats=index % 6,
            gpt_tokens=1000 * index,
        )
        for index in range(ACCOUNTS)
    ]


def write_batch(root: Path) -> dict[str, Path]:
    """Plans, accounts, subscriptions and a quantities file for the 100-account batch."""
    cases = _cases()
    plans = root / "plans"
    plans.mkdir(parents=True)
    for case in cases:
        (plans / f"{case.plan}.yaml").write_text(case.plan_yaml())
    with (root / "accounts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "currency"])
        writer.writerows([case.account, "USD"] for case in cases)
    with (root / "subscriptions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "plan_code", "starts_on"])
        writer.writerows([case.account, case.plan, "2026-01-01"] for case in cases)
    with (root / "usage.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account", "meter", "period", "quantity", "dimension"])
        for case in cases:
            writer.writerow([case.account, "api.requests", PERIOD, case.calls, ""])
            writer.writerow([case.account, "storage.gb_hours", PERIOD, case.storage_gb_hours, ""])
            if case.seats:
                writer.writerow([case.account, "seats.active", PERIOD, case.seats, ""])
            writer.writerow([case.account, "tokens.generated", PERIOD, case.gpt_tokens, "gpt-4o"])
    return {
        "plans": plans,
        "accounts": root / "accounts.csv",
        "subscriptions": root / "subscriptions.csv",
        "usage": root / "usage.csv",
    }


def test_quantities_become_one_landing_event_per_unit_of_meaning(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "account,meter,period,quantity,dimension\n"
        "a,api.requests,2026-01,1000.5,\n"
        "a,storage.gb_hours,2026-01,250,\n"
        "a,seats.active,2026-01,3,\n"
        "a,builds.completed,2026-01,2,\n"
        "a,tokens.generated,2026-01,7,gpt-4o\n"
    )
    kind, rows, problems = write_usage(
        usage, tmp_path / "landing", read_meters(SEEDS_DIR / "meters.csv")
    )
    events = [json.loads(line) for line in (tmp_path / "landing" / "usage.ndjson").open()]
    assert (kind, rows, len(events), problems) == ("quantities", 9, 9, [])
    assert [(e["meter"], e["value"], e["ts"], e.get("properties")) for e in events] == [
        ("api.requests", "1000.5", "2026-01-01T00:00:00Z", None),
        ("storage.gb_hours", "250", "2026-01-01T00:00:00Z", None),
        ("storage.gb_hours", "0", "2026-01-01T01:00:00Z", None),
        ("seats.active", "1", "2026-01-01T00:00:00Z", {"user_id": "unit-1"}),
        ("seats.active", "1", "2026-01-01T00:00:00Z", {"user_id": "unit-2"}),
        ("seats.active", "1", "2026-01-01T00:00:00Z", {"user_id": "unit-3"}),
        ("builds.completed", "1", "2026-01-01T00:00:00Z", None),
        ("builds.completed", "1", "2026-01-01T00:00:00Z", None),
        ("tokens.generated", "7", "2026-01-01T00:00:00Z", {"model": "gpt-4o"}),
    ]
    assert len({event["uniqueId"] for event in events}) == len(events)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,nope,2026-01,1,", "row 1: unknown meter 'nope'"),
        ("a,api.requests,2026-13,1,", "row 1: period '2026-13' is not YYYY-MM"),
        ("a,api.requests,2026-01,-1,", "row 1: quantity must be a number >= 0"),
        ("a,builds.completed,2026-01,1.5,", "row 1: a count meter needs a whole quantity"),
        ("a,api.requests,2026-01,1,gpt-4o", "row 1: meter 'api.requests' has no dimension"),
    ],
)
def test_bad_quantities_are_left_out_with_row_and_reason(tmp_path, row, message):
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "account,meter,period,quantity,dimension\n" + row + "\na,api.requests,2026-01,7,\n"
    )
    _, rows, problems = write_usage(
        usage, tmp_path / "landing", read_meters(SEEDS_DIR / "meters.csv")
    )
    assert rows == 1  # the good row
    [problem] = problems
    assert problem.account_id == "a" and f"usage.csv: {message}" in problem.message


@pytest.mark.slow
def test_one_run_prices_100_accounts_on_100_plans(tmp_path):
    inputs = write_batch(tmp_path / "in")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "price",
            "--plans", str(inputs["plans"]),
            "--subscriptions", str(inputs["subscriptions"]),
            "--accounts", str(inputs["accounts"]),
            "--usage", str(inputs["usage"]),
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    invoices = json.loads((out / "invoices.json").read_text())
    assert len(invoices) == ACCOUNTS
    assert len({invoice["plan_code"] for invoice in invoices}) == ACCOUNTS
    totals = {invoice["account_id"]: Decimal(invoice["total"]) for invoice in invoices}
    expected = {case.account: case.expected_total() for case in _cases()}
    assert totals == expected


def test_a_quantity_of_a_multi_key_meter_names_its_combination(tmp_path):
    """Decision 81: `dimension` of a meter keyed by model|region is a combination; a key left
    out (or `*`) is a property the events lack."""
    meters = tmp_path / "meters.csv"
    meters.write_text(
        "meter_code,aggregation,unit,dimension_key,unique_property,description\n"
        "llm.calls,sum,call,model|region,,LLM calls\n"
    )
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "account,meter,period,quantity,dimension\n"
        "a,llm.calls,2026-01,7,region=eu|model=gpt-4o\n"
        "a,llm.calls,2026-01,2,region=eu\n"
        "a,llm.calls,2026-01,3,model=*|region=us\n"
        "a,llm.calls,2026-01,1,colour=red\n"
    )
    _, rows, problems = write_usage(usage, tmp_path / "landing", read_meters(meters))
    events = [json.loads(line) for line in (tmp_path / "landing" / "usage.ndjson").open()]
    assert rows == 3
    assert [(e["uniqueId"], e["value"], e.get("properties")) for e in events] == [
        (
            "q:a:llm.calls:2026-01:model=gpt-4o|region=eu:1",
            "7",
            {"region": "eu", "model": "gpt-4o"},
        ),
        ("q:a:llm.calls:2026-01:model=*|region=eu:1", "2", {"region": "eu"}),
        ("q:a:llm.calls:2026-01:model=*|region=us:1", "3", {"region": "us"}),
    ]
    [problem] = problems
    assert "row 4: dimension 'colour=red' is not a combination of the keys of 'llm.calls'" in (
        problem.message
    )
