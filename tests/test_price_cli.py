"""`billing price` end to end: worked examples from public pricing docs, reproduced exactly.

One CLI run prices every example below (one account each) through the pipeline's own assets on a
temporary warehouse. The plan of each example is in tests/fixtures/pricing_examples/plans/, with
the source it reproduces named in its header comment and here.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dagster_billing.cli import main
from tests.conftest import FIXTURES

CASE = FIXTURES / "pricing_examples"
STRIPE_TIERS = "https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing"
STRIPE_PACKAGE = "https://stripe.com/docs/billing/subscriptions/quantity-transformation"
STRIPE_TRANSFORM = "https://docs.stripe.com/billing/subscriptions/usage-based/transform-quantities"
OPENMETER = "https://openmeter.io/docs/billing/product-catalog/pricing-models"
LAGO = "https://getlago.com/docs/guide/plans/charges"
LAGO_COMMITMENT = "https://github.com/getlago/lago-api/pull/1787"
LAGO_GRAD_PCT = (
    "https://github.com/getlago/lago-api/blob/main/spec/services/charge_models/"
    "graduated_percentage_service_spec.rb"
)
KILLBILL_BLOCKS = (
    "https://github.com/killbill/killbill/blob/master/invoice/src/test/java/org/killbill/billing/"
    "invoice/usage/TestContiguousIntervalConsumableInArrear.java"
)
OPENMETER_DYNAMIC = (
    "https://github.com/openmeterio/openmeter/blob/main/openmeter/billing/rating/service/rate/"
    "dynamic_test.go"
)
LAGO_WALLETS = (
    "https://github.com/getlago/lago-api/blob/main/spec/services/credits/"
    "allocate_prepaid_credits_by_wallets_service_spec.rb"
)
CHARGEBEE = (
    "https://www.chargebee.com/docs/2.0/site-configuration/articles-and-faq/"
    "what-is-the-rounding-logic-for-line-item-amounts.html"
)

LAGO_SPEC = "https://github.com/getlago/lago-api/blob/main/spec"
LAGO_FILTERS = "https://getlago.com/docs/guide/plans/charges/charges-with-filters"
LAGO_FILTER_PRECEDENCE = (
    "https://github.com/getlago/lago-api/blob/main/app/services/charge_filters/"
    "matching_and_ignored_service.rb"
)


def _cloud(day: int, value: int, **properties: str) -> tuple:
    return (f"2026-01-{day:02d}T12:00:00Z", value, properties or None)


@dataclass(frozen=True)
class Example:
    """One account on one plan: its usage, the totals expected and the source they come from.

    usage: values (one event each, on January 2, 3, ... at noon) or (ts, value[, properties[,
    meter]]) events; total: January's total, or {period_start: total} for other periods."""

    account: str
    plan: str
    usage: tuple | list | None
    total: str | dict[str, str]
    source: str
    meter: str = "units"
    currency: str = "USD"
    subscription: dict = field(default_factory=dict)

    def totals(self) -> dict[str, str]:
        return self.total if isinstance(self.total, dict) else {"2026-01-01": self.total}

    def events(self) -> list[dict]:
        events = []
        for index, item in enumerate(self.usage or (), start=2):
            ts, value, properties, meter = (
                (f"2026-01-{index:02d}T12:00:00Z", item, None, None)
                if not isinstance(item, tuple)
                else (*item, None, None)[:4]
            )
            event = {
                "uniqueId": f"{self.account}-{index}",
                "account": self.account,
                "meter": meter or self.meter,
                "value": str(value),
                "ts": ts,
            }
            if properties:
                event["properties"] = properties
            events.append(event)
        return events


def _ex(account, plan, usage, total, source, **fields) -> Example:
    return Example(account, plan, usage, total, source, **fields)


def _seat(ts: str, user: str, value: int = 1) -> tuple:
    return (ts, value, {"user_id": user})


EXAMPLES = [
    *[
        _ex(f"stripe_volume_{quantity}", "stripe_volume", [quantity], total, STRIPE_TIERS)
        for quantity, total in (
            (1, "7.00"),
            (5, "35.00"),
            (6, "39.00"),
            (20, "120.00"),
            (25, "150.00"),
        )
    ],
    *[
        _ex(f"stripe_package_{quantity}", "stripe_package", [quantity], total, STRIPE_PACKAGE)
        for quantity, total in (
            (1, "10.00"),
            (3, "10.00"),
            (5, "10.00"),
            (6, "20.00"),
            (7, "20.00"),
        )
    ],
    _ex("stripe_hourly_150", "stripe_hourly", [150], "30.00", STRIPE_TRANSFORM),
    _ex("openmeter_graduated_6000", "openmeter_graduated", [6000], "1200.00", OPENMETER),
    _ex("openmeter_volume_6000", "openmeter_volume", [6000], "600.00", OPENMETER),
    _ex("openmeter_flat_tier_2000", "openmeter_flat_tier", [2000], "600.00", OPENMETER),
    _ex("openmeter_flat_tier_0", "openmeter_flat_tier", None, "500.00", OPENMETER),
    *[
        _ex(f"openmeter_package_{label}", "openmeter_package", [quantity], total, OPENMETER)
        for label, quantity, total in (
            ("0", 0, "0.00"),
            ("20", 20, "10.00"),
            ("20_1", "20.1", "20.00"),
            ("98", 98, "50.00"),
        )
    ],
    _ex("openmeter_overage_1000", "openmeter_overage", [1000], "9.00", OPENMETER),
    _ex("lago_package_201", "lago_package", [201], "10.00", f"{LAGO}/charge-models/package"),
    _ex("lago_volume_65000", "lago_volume", [65000], "49.00", f"{LAGO}/charge-models/volume"),
    _ex(
        "lago_percentage",
        "lago_percentage",
        [200, 100, 100, 50],
        "0.70",
        f"{LAGO}/charge-models/percentage",
        meter="payments",
    ),
    _ex("lago_commitment_3", "lago_commitment", [3], "100.00", LAGO_COMMITMENT),
    _ex("lago_minimum_5000", "lago_spending_minimum", [5000], "100.00", f"{LAGO}/spending-minimum"),
    _ex("committed_2m", "committed_spend", [2_000_000], "1230.00", "PRODUCT.md scale_2026"),
    _ex("committed_500k", "committed_spend", [500_000], "1000.00", "PRODUCT.md scale_2026"),
    _ex(
        "mid_change",
        "mid_change",
        [3100],
        "96.00",
        "decisions.md: version change prorates by days",
    ),
    _ex(
        "trial_advance",
        "recurring",
        None,
        "43.00",
        "decisions.md: trial, start day, in advance",
        subscription={"starts_on": "2026-01-10", "trial_ends_on": "2026-01-20"},
    ),
    _ex(
        "ends_mid_month",
        "recurring_arrears",
        None,
        "10.00",
        "decisions.md: end date exclusive",
        subscription={"ends_on": "2026-01-11"},
    ),
    _ex("yen_201", "yen", [201], "101", "decisions.md: JPY half-up", currency="JPY"),
    _ex("tiny_price", "tiny_price", [1_000_000_000_000], "100000.00", "issue: 10^12 x $0.0000001"),
    _ex(
        "override_20",
        "stripe_volume",
        [20],
        "20.00",
        "subscription overrides",
        subscription={
            "overrides": {"charges": [{"id": "fonts", "model": "per_unit", "unit_price": "1"}]}
        },
    ),
    # Decision 50: a seat carried over from December bills January without a new event.
    # December: held from the 5th, 27 of 31 days = 0.87097 x $10; January: (1 + 21/31).ceil(5).
    _ex(
        "lago_seat_days",
        "lago_seat_days",
        [_seat("2025-12-05T09:00:00Z", "u1"), _seat("2026-01-11T18:00:00Z", "u2")],
        {"2025-12-01": "8.71", "2026-01-01": "16.77"},
        f"{LAGO_SPEC}/services/billable_metrics/prorated_aggregations/unique_count_service_spec.rb",
        meter="seats",
        subscription={"starts_on": "2025-12-01"},
    ),
    # Decision 51: the true-up counts the commitment period's fees, wherever they are invoiced.
    _ex(
        "lago_commitment_in_advance",
        "lago_commitment_in_advance",
        [("2024-02-28T12:00:00Z", 70), ("2024-03-10T12:00:00Z", 15)],
        {"2024-02-01": "789.66", "2024-03-01": "10000.00"},
        f"{LAGO_SPEC}/scenarios/commitments/minimum/in_advance/calendar/monthly_spec.rb",
        subscription={"starts_on": "2024-02-28"},
    ),
    _ex("max_commitment", "max_commitment", [5], "999999999999.99", "decision 53: limits"),
    # Decision 54: prices and amounts finer than the minor unit, rounded once on the line.
    _ex("chargebee_multidecimal", "chargebee_multidecimal", ["10.625"], "47.34", CHARGEBEE),
    _ex(
        "chargebee_multidecimal_yen",
        "chargebee_multidecimal_yen",
        ["10.625"],
        "47",
        CHARGEBEE,
        currency="JPY",
    ),
    _ex("sub_minor", "sub_minor", None, "27.79", "issue 25: 7.777 and 20.005 USD a month"),
    _ex("sub_minor_yen", "sub_minor_yen", None, "251", "issue 25: 250.5 JPY", currency="JPY"),
    # Decision 55: graduated percentage, tiered blocks, dynamic charges.
    _ex(
        "lago_grad_pct_21",
        "lago_graduated_percentage",
        [21],
        "900.33",
        LAGO_GRAD_PCT,
        meter="payments",
    ),
    _ex("lago_grad_pct_0", "lago_graduated_percentage", None, "200.00", LAGO_GRAD_PCT),
    _ex(
        "killbill_blocks",
        "killbill_blocks",
        [5325, ("2026-01-03T12:00:00Z", 111, None, "calls")],
        "130.50",
        KILLBILL_BLOCKS,
    ),
    _ex("killbill_top_tier", "killbill_top_tier", [101001], "51.00", KILLBILL_BLOCKS),
    _ex(
        "lago_dynamic",
        "lago_dynamic",
        [
            ("2026-01-02T12:00:00Z", 12, {"cost": "0.25"}),
            ("2026-01-03T12:00:00Z", 8, {"cost": "0.152"}),
        ],
        "0.40",
        f"{LAGO_SPEC}/services/charge_models/dynamic_service_spec.rb",
        meter="llm.tokens",
    ),
    _ex("openmeter_dynamic", "openmeter_dynamic", [4, 6], "13.33", OPENMETER_DYNAMIC),
    # Decision 81: a meter keyed by region and provider; whole combinations, partial filters
    # (the most specific wins) and the default.
    _ex(
        "lago_filters",
        "lago_filters",
        [
            _cloud(2, 10, region="africa", provider="aws"),
            _cloud(3, 4, region="europe", provider="gcp"),
        ],
        "12.00",
        LAGO_FILTERS,
        meter="cloud.requests",
    ),
    _ex(
        "lago_filter_precedence",
        "lago_filter_precedence",
        [
            _cloud(2, 10, region="africa", provider="aws"),
            _cloud(3, 5, provider="gcp", region="africa"),
            _cloud(4, 1, region="africa"),
            _cloud(5, 4, region="europe", provider="gcp"),
            _cloud(6, 6, region="europe", provider="aws"),
            _cloud(7, 7),
        ],
        "21.40",
        LAGO_FILTER_PRECEDENCE,
        meter="cloud.requests",
    ),
    # Decision 57: coupons, credits (by fee type) and billing cycles as input files.
    _ex("lago_wallets", "lago_wallets", [15], "0.00", LAGO_WALLETS),
    _ex(
        "lago_invoice_calculation",
        "lago_invoice_calculation",
        [20],
        "30.00",
        "https://getlago.com/changelog/nvoice-calculation-method",
    ),
    _ex(
        "lago_seat_days_anniversary",
        "lago_seat_days",
        [_seat("2022-06-09T00:00:00Z", "u1"), _seat("2022-07-19T10:00:00Z", "u2")],
        {"2022-06-09": "10.00", "2022-07-09": "16.77"},
        f"{LAGO_SPEC}/services/billable_metrics/prorated_aggregations/unique_count_service_spec.rb",
        meter="seats",
        subscription={"starts_on": "2022-06-09"},
    ),
    # Decision 56: weekly, quarterly, calendar and anniversary cycles, prorated by days.
    *[
        _ex(
            f"lago_{interval}_{cycle}",
            f"lago_commitment_{interval}",
            [("2024-03-12T12:00:00Z", 30), (second, 10)],
            totals,
            f"{LAGO_SPEC}/scenarios/commitments/minimum/in_arrears/{cycle}/{interval}_spec.rb",
            subscription={"starts_on": "2024-03-12"},
        )
        for interval, cycle, second, totals in (
            (
                "weekly",
                "calendar",
                "2024-03-19T12:00:00Z",
                {"2024-03-11": "8571.43", "2024-03-18": "10000.00"},
            ),
            (
                "weekly",
                "anniversary",
                "2024-03-19T12:00:00Z",
                {"2024-03-12": "10000.00", "2024-03-19": "10000.00"},
            ),
            (
                "quarterly",
                "calendar",
                "2024-04-15T12:00:00Z",
                {"2024-01-01": "2197.80", "2024-04-01": "10000.00"},
            ),
            (
                "quarterly",
                "anniversary",
                "2024-06-20T12:00:00Z",
                {"2024-03-12": "10000.00", "2024-06-12": "10000.00"},
            ),
        )
    ],
    # Decision 58: pay-in-advance charges bill each event at once, on an instant line.
    _ex(
        "lago_pay_in_advance",
        "lago_pay_in_advance",
        [("2023-02-15T00:00:00Z", 3), ("2023-02-17T00:00:00Z", 1), ("2023-02-18T00:00:00Z", 2)],
        {"2023-02-01": "0.13"},
        f"{LAGO_SPEC}/scenarios/pay_in_advance_charges_spec.rb",
        subscription={"starts_on": "2023-01-24"},
    ),
    # Decision 59: prorated graduated seats: tiers on full units, prices on prorated units.
    _ex(
        "prorated_seats",
        "prorated_seats",
        [_seat("2025-12-05T10:00:00Z", f"u{n}") for n in range(1, 8)]
        + [_seat("2026-01-16T10:00:00Z", "u8")],
        {"2025-12-01": "202.26", "2026-01-01": "212.58"},
        "https://github.com/getlago/lago-api/blob/main/app/services/charge_models/"
        "prorated_graduated_service.rb",
        meter="seats",
        subscription={"starts_on": "2025-12-01"},
    ),
    _ex(
        "lago_percentage_zero",
        "lago_percentage_spec",
        [0, 0, 0, 0],
        "0.00",
        f"{LAGO_SPEC}/services/charge_models/percentage_service_spec.rb",
        meter="payments",
    ),
]


COUPONS = [
    {"account_id": "lago_invoice_calculation", "coupon_type": "fixed", "amount_off": "10"},
    {"account_id": "bad_coupon", "coupon_type": "fixed", "amount_off": "5", "currency": "EUR"},
]
CREDITS = [
    {"grant_id": f"{prefix}_{name}", "account_id": "lago_wallets", "amount": "10", **fields}
    for prefix, priority in (("a", 49), ("b", 50))
    for name, fields in (
        ("any", {"priority": priority}),
        ("charges", {"priority": priority, "fee_type": "usage"}),
        ("subscription", {"priority": priority, "fee_type": "subscription"}),
    )
] + [{"account_id": "lago_invoice_calculation", "amount": "30"}]
BILLING_CYCLES = [
    {"account_id": "lago_seat_days_anniversary", "anchor_day": 9},
    {
        "account_id": "lago_weekly_anniversary",
        "billing_interval": "week",
        "anchor_date": "2024-03-12",
    },
    {
        "account_id": "lago_quarterly_anniversary",
        "billing_interval": "quarter",
        "anchor_date": "2024-03-12",
    },
]

# Decision 53: what cannot be priced is left out and reported; the rest of the batch is priced.
BAD_PLANS = {
    "bad_meter": "charges:\n  - {id: u, meter: unitz, model: per_unit, unit_price: 1}\n",
    "huge_commitment": "commitment: {minimum: 100000000000000}\n"
    "charges:\n  - {id: u, meter: units, model: per_unit, unit_price: 1}\n",
}
BAD_ACCOUNTS = [  # account, currency, plan, expected error
    ("on_bad_meter", "USD", "bad_meter", "plan 'bad_meter' cannot be priced"),
    ("on_huge_commitment", "USD", "huge_commitment", "plan 'huge_commitment' cannot be priced"),
    ("yen_on_dollars", "JPY", "stripe_volume", "plan 'stripe_volume' is priced in USD"),
    ("no_currency", "", "stripe_volume", "currency is required"),
    ("no_such_plan", "USD", "nope", "unknown plan 'nope'"),
    ("bad_coupon", "USD", "stripe_volume", "row 2: currency EUR is not the account's (USD)"),
]


def _write_inputs(root: Path, *, with_bad_rows: bool = False) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    bad_accounts = BAD_ACCOUNTS if with_bad_rows else []
    with (root / "accounts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "account_name", "currency"])
        for example in EXAMPLES:
            name = example.account.replace("_", " ").title()
            writer.writerow([example.account, name, example.currency])
        for account, currency, *_ in bad_accounts:
            writer.writerow([account, account, currency])
    subscriptions = [
        {
            "account_id": example.account,
            "plan_code": example.plan,
            "starts_on": "2026-01-01",
            **example.subscription,
        }
        for example in EXAMPLES
    ] + [
        {"account_id": account, "plan_code": plan, "starts_on": "2026-01-01"}
        for account, _, plan, _ in bad_accounts
    ]
    (root / "subscriptions.yaml").write_text(yaml.safe_dump(subscriptions, sort_keys=False))
    with (root / "usage.ndjson").open("w") as handle:
        for example in EXAMPLES:
            for event in example.events():
                handle.write(json.dumps(event) + "\n")
    for name, rows in (
        ("coupons", COUPONS),
        ("credits", CREDITS),
        ("billing_cycles", BILLING_CYCLES),
    ):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(rows, sort_keys=False))
    plans = CASE / "plans"
    if with_bad_rows:
        plans = root / "plans"
        shutil.copytree(CASE / "plans", plans)
        head = "version: 1\nname: Bad\neffective_from: 2026-01-01\ncurrency: USD\n"
        for code, body in BAD_PLANS.items():
            (plans / f"{code}.yaml").write_text(f"code: {code}\n{head}{body}")
    return {
        "plans": plans,
        "meters": CASE / "meters.csv",
        "accounts": root / "accounts.csv",
        "subscriptions": root / "subscriptions.yaml",
        "usage": root / "usage.ndjson",
        "coupons": root / "coupons.yaml",
        "credits": root / "credits.yaml",
        "billing_cycles": root / "billing_cycles.yaml",
    }


@pytest.fixture(scope="module")
def priced(tmp_path_factory) -> tuple[dict, list[dict], Path, str]:
    root = tmp_path_factory.mktemp("examples")
    inputs = _write_inputs(root / "in", with_bad_rows=True)
    out = root / "out"
    result = CliRunner().invoke(
        main,
        [
            "price",
            "--plans",
            str(inputs["plans"]),
            "--subscriptions",
            str(inputs["subscriptions"]),
            "--accounts",
            str(inputs["accounts"]),
            "--usage",
            str(inputs["usage"]),
            "--meters",
            str(inputs["meters"]),
            "--coupons",
            str(inputs["coupons"]),
            "--credits",
            str(inputs["credits"]),
            "--billing-cycles",
            str(inputs["billing_cycles"]),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output  # the bad rows; everything else is priced
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    invoices = json.loads((out / "invoices.json").read_text())
    return summary, invoices, out, result.stderr


def _invoice(invoices: list[dict], account: str, period: str = "2026-01-01") -> dict:
    [invoice] = [i for i in invoices if i["account_id"] == account and i["period_start"] == period]
    return invoice


@pytest.mark.slow
@pytest.mark.parametrize(
    ("account", "period", "expected_total", "source"),
    [
        (example.account, period, total, example.source)
        for example in EXAMPLES
        for period, total in example.totals().items()
    ],
    ids=[f"{example.account}@{period[:7]}" for example in EXAMPLES for period in example.totals()],
)
def test_worked_example_is_reproduced_exactly(priced, account, period, expected_total, source):
    _, invoices, *_ = priced
    invoice = _invoice(invoices, account, period)
    assert invoice["total"] == expected_total, source
    assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == Decimal(expected_total)


def _lines(invoices, account) -> list[tuple[str, str | None, str]]:
    return [
        (line["line_type"], line["charge_id"], line["amount"])
        for line in _invoice(invoices, account)["lines"]
    ]


@pytest.mark.slow
def test_every_account_gets_one_january_invoice(priced):
    summary, invoices, *_ = priced
    # Other cycles have no period starting on January 1; a plan of pay-in-advance charges
    # only bills periods with events (decision 58).
    anniversary = {cycle["account_id"] for cycle in BILLING_CYCLES} | {
        "lago_weekly_calendar",
        "lago_pay_in_advance",
    }
    assert sorted(i["account_id"] for i in invoices if i["period_start"] == "2026-01-01") == sorted(
        example.account for example in EXAMPLES if example.account not in anniversary
    )
    assert summary["invoices"] == len(invoices)
    assert summary["outcomes"] == {"accepted": sum(len(e.events()) for e in EXAMPLES)}


@pytest.mark.slow
def test_adjustment_lines_follow_their_charges(priced):
    _, invoices, *_ = priced
    assert sorted(_lines(invoices, "openmeter_overage_1000")) == [
        ("charge", "units", "10.00"),
        ("discount", "units", "-1.00"),
    ]
    assert sorted(_lines(invoices, "lago_commitment_3")) == [
        ("charge", "units", "30.00"),
        ("commitment_true_up", None, "20.00"),
        ("recurring", "subscription", "50.00"),
    ]
    assert sorted(_lines(invoices, "lago_minimum_5000")) == [
        ("charge", "mtu", "50.00"),
        ("minimum", "mtu", "50.00"),
    ]
    assert sorted(_lines(invoices, "committed_500k")) == [
        ("charge", "api_requests", "450.00"),
        ("commitment_discount", None, "-81.00"),
        ("commitment_true_up", None, "631.00"),
    ]


@pytest.mark.slow
def test_version_change_splits_the_period_by_days(priced):
    _, invoices, *_ = priced
    lines = _invoice(invoices, "mid_change")["lines"]
    assert sorted((line["invoice_line_id"], line["amount"]) for line in lines) == [
        ("inv-mid_change-2026-01-01:platform:2026-01-01", "14.00"),
        ("inv-mid_change-2026-01-01:platform:2026-01-15", "34.00"),
        ("inv-mid_change-2026-01-01:units@2026-01-01", "14.00"),
        ("inv-mid_change-2026-01-01:units@2026-01-15", "34.00"),
    ]
    assert _invoice(invoices, "mid_change")["plan_version"] == 2


@pytest.mark.slow
def test_in_advance_fees_bill_the_first_month_prorated_and_the_next(priced):
    _, invoices, *_ = priced
    lines = _invoice(invoices, "trial_advance")["lines"]
    assert sorted((line["invoice_line_id"], line["amount"]) for line in lines) == [
        ("inv-trial_advance-2026-01-01:advance:2026-01-10", "12.00"),
        ("inv-trial_advance-2026-01-01:advance:2026-02-01", "31.00"),
    ]


@pytest.mark.slow
def test_outputs_are_json_and_csv_with_exact_decimal_strings(priced):
    _, invoices, out, _ = priced
    with (out / "invoices.csv").open(newline="") as handle:
        rows = {row["account_id"]: row for row in csv.DictReader(handle)}
    assert rows["yen_201"]["total"] == "101" and rows["tiny_price"]["total"] == "100000.00"
    with (out / "invoice_lines.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == sum(len(invoice["lines"]) for invoice in invoices)
    [tiny] = [line for line in lines if line["account_id"] == "tiny_price"]
    assert (tiny["quantity"], tiny["unit_price"], tiny["amount"]) == (
        "1000000000000",
        "0.0000001",
        "100000.00",
    )


@pytest.mark.parametrize(
    ("subscription", "message"),
    [
        ({"account_id": "nobody", "plan_code": "yen"}, "row 1: unknown account 'nobody'"),
        (
            {"account_id": "yen_201", "plan_code": "nope"},
            "subscription sub_yen_201_1: unknown plan 'nope'",
        ),
        (
            {"account_id": "yen_201", "plan_code": "yen", "starts_on": "2026-02-30"},
            "row 1: starts_on: '2026-02-30' is not a date",
        ),
        (
            {"account_id": "yen_201", "plan_code": "yen", "starts_on": "2025-12-31"},
            "subscription sub_yen_201_1: plan 'yen' has no version in force on 2025-12-31",
        ),
    ],
)
def test_bad_input_fails_with_file_row_and_reason(tmp_path, subscription, message):
    inputs = _write_inputs(tmp_path / "in")
    inputs["subscriptions"].write_text(
        yaml.safe_dump([{"starts_on": "2026-01-01", **subscription}])
    )
    result = CliRunner().invoke(
        main,
        [
            "price",
            "--plans", str(inputs["plans"]),
            "--subscriptions", str(inputs["subscriptions"]),
            "--accounts", str(inputs["accounts"]),
            "--usage", str(inputs["usage"]),
            "--meters", str(inputs["meters"]),
            "--out", str(tmp_path / "out"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"subscriptions.yaml: {message}" in result.output
    assert "Traceback" not in result.output


def test_commitment_true_up_counts_the_fees_of_its_own_period(priced):
    """Lago bills these true-ups as 61,276 and 988,500 cents (in_advance/calendar/monthly_spec)."""
    _, invoices, *_ = priced
    true_ups = {
        period: line["amount"]
        for period in ("2024-02-01", "2024-03-01")
        for line in _invoice(invoices, "lago_commitment_in_advance", period)["lines"]
        if line["line_type"] == "commitment_true_up"
    }
    assert true_ups == {"2024-02-01": "612.76", "2024-03-01": "9885.00"}


def test_what_cannot_be_priced_is_reported_and_the_rest_is_priced(priced):
    summary, invoices, _, stderr = priced
    assert summary["failed_plans"] == ["bad_meter", "huge_commitment"]
    assert summary["failed_accounts"] == sorted(account for account, *_ in BAD_ACCOUNTS)
    errors: dict[str, str] = {}
    for error in summary["errors"]:
        key = error.get("account") or error.get("plan")
        errors[key] = errors.get(key, "") + error["error"]
    assert "charges[0].meter: unknown meter 'unitz'" in errors["bad_meter"]
    assert (
        "commitment.minimum: Input should be less than 1000000000000 (10^12: the largest price "
        "or amount a plan may state)" in errors["huge_commitment"]
    )
    for account, _, _, message in BAD_ACCOUNTS:
        assert message in errors[account], errors[account]
        assert "Error: " in stderr and message in stderr
    assert not {invoice["account_id"] for invoice in invoices} & set(errors)
    assert (
        "not priced: plans bad_meter, huge_commitment; accounts bad_coupon, no_currency, " in stderr
    )


def test_the_largest_commitment_prices_through_the_run_rate(priced):
    _, invoices, *_ = priced
    invoice = _invoice(invoices, "max_commitment")
    assert invoice["estimated_period_charges"] == "999999999999.99"
    assert invoice["total_minor"] == 99999999999999


def test_blocks_and_rates_are_shown_per_tier(priced):
    """The invoice lines carry each tier's blocks, block size, unit (block) price and rate."""
    _, invoices, *_ = priced
    [units, calls] = [
        line
        for line in _invoice(invoices, "killbill_blocks")["lines"]
        if line["line_type"] == "charge"
    ]
    assert [
        (
            t["tier_number"],
            t["block_size"],
            t["package_count"],
            t["unit_price"],
            t["amount_unrounded"],
        )
        for t in units["tiers"]
    ] == [
        (1, "100", 10, "1", "10"),
        (2, "1000", 5, "1", "5"),
    ]
    assert (units["quantity"], units["package_count"], calls["amount"]) == ("5325", 15, "115.50")
    [gradpct] = _invoice(invoices, "lago_grad_pct_21")["lines"]
    assert [
        (t["rate_percent"], t["tier_quantity"], t["flat_fee_charged"]) for t in gradpct["tiers"]
    ] == [
        ("1", "10", "200"),
        ("2", "10", "300"),
        ("3", "1", "400"),
    ]


def test_credits_are_drawn_by_priority_and_fee_type(priced):
    """Lago allocates 10, 10, 10, 10, 5 (charges) and 5 (subscription) of its six wallets."""
    _, invoices, *_ = priced
    draws = {
        line["instrument_id"]: line["amount"]
        for line in _invoice(invoices, "lago_wallets")["lines"]
        if line["line_type"] == "credit"
    }
    assert draws == {
        "a_any": "-10.00",
        "a_charges": "-10.00",
        "a_subscription": "-10.00",
        "b_any": "-10.00",
        "b_charges": "-5.00",
        "b_subscription": "-5.00",
    }
    lines = _lines(invoices, "lago_invoice_calculation")
    assert sorted(amount for kind, _, amount in lines if kind in ("coupon", "credit")) == [
        "-10.00",
        "-30.00",
    ]


def test_true_ups_of_weekly_and_quarterly_periods_are_prorated_by_days(priced):
    """Lago: weekly calendar 845,572 then 989,000 cents; quarterly calendar 214,582 then 989,000;
    anniversary (whole periods) 987,000 then 989,000."""
    _, invoices, *_ = priced
    true_ups = {
        (example.account, period): line["amount"]
        for example in EXAMPLES
        if example.plan in ("lago_commitment_weekly", "lago_commitment_quarterly")
        for period in example.totals()
        for line in _invoice(invoices, example.account, period)["lines"]
        if line["line_type"] == "commitment_true_up"
    }
    assert true_ups == {
        ("lago_weekly_calendar", "2024-03-11"): "8455.72",
        ("lago_weekly_calendar", "2024-03-18"): "9890.00",
        ("lago_weekly_anniversary", "2024-03-12"): "9870.00",
        ("lago_weekly_anniversary", "2024-03-19"): "9890.00",
        ("lago_quarterly_calendar", "2024-01-01"): "2145.82",
        ("lago_quarterly_calendar", "2024-04-01"): "9890.00",
        ("lago_quarterly_anniversary", "2024-03-12"): "9870.00",
        ("lago_quarterly_anniversary", "2024-06-12"): "9890.00",
    }
    [week] = [i for i in invoices if i["invoice_id"] == "inv-lago_weekly_calendar-2024-03-11"]
    assert (week["period_start"], week["period_end"]) == ("2024-03-11", "2024-03-18")


def test_pay_in_advance_events_are_instant_lines(priced):
    """Lago charges 7, 2 and 4 cents for the three events (pay_in_advance_charges_spec.rb)."""
    _, invoices, *_ = priced
    lines = _invoice(invoices, "lago_pay_in_advance", "2023-02-01")["lines"]
    assert [(line["line_type"], line["quantity"], line["amount"]) for line in lines] == [
        ("instant", "3", "0.07"),
        ("instant", "1", "0.02"),
        ("instant", "2", "0.04"),
    ]


def test_the_most_specific_dimension_filter_prices_each_combination(priced):
    """Decision 81: Africa & AWS keeps its units from the partial filter region Africa, which
    takes Africa on GCP and Africa without a provider; the default prices each other
    combination; the AWS mark-up (a filter on the second key) reads the events of both regions."""
    _, invoices, *_ = priced
    lines = _invoice(invoices, "lago_filter_precedence")["lines"]
    prefix = "inv-lago_filter_precedence-2026-01-01:"
    assert sorted(
        (line["invoice_line_id"].removeprefix(prefix), line["quantity"], line["amount"])
        for line in lines
    ) == [
        ("aws_markup:region=*|provider=aws", "16", "1.60"),
        ("requests:region=africa|provider=*", "6", "4.80"),
        ("requests:region=africa|provider=aws", "10", "10.00"),
        ("requests:region=europe|provider=aws", "6", "3.00"),
        ("requests:region=europe|provider=gcp", "4", "2.00"),
    ]
