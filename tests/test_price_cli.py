"""`billing price` end to end: worked examples from public pricing docs, reproduced exactly.

One CLI run prices every example below (one account each) through the pipeline's own assets on a
temporary warehouse. The plan of each example is in tests/fixtures/pricing_examples/plans/, with
the source it reproduces named in its header comment and here.
"""

from __future__ import annotations

import csv
import json
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

# account, plan, usage values (one event each; None = no usage), expected total, source
EXAMPLES = [
    *[
        (f"stripe_volume_{quantity}", "stripe_volume", [quantity], total, STRIPE_TIERS)
        for quantity, total in (
            (1, "7.00"),
            (5, "35.00"),
            (6, "39.00"),
            (20, "120.00"),
            (25, "150.00"),
        )
    ],
    *[
        (f"stripe_package_{quantity}", "stripe_package", [quantity], total, STRIPE_PACKAGE)
        for quantity, total in (
            (1, "10.00"),
            (3, "10.00"),
            (5, "10.00"),
            (6, "20.00"),
            (7, "20.00"),
        )
    ],
    ("stripe_hourly_150", "stripe_hourly", [150], "30.00", STRIPE_TRANSFORM),
    ("openmeter_graduated_6000", "openmeter_graduated", [6000], "1200.00", OPENMETER),
    ("openmeter_volume_6000", "openmeter_volume", [6000], "600.00", OPENMETER),
    ("openmeter_flat_tier_2000", "openmeter_flat_tier", [2000], "600.00", OPENMETER),
    ("openmeter_flat_tier_0", "openmeter_flat_tier", None, "500.00", OPENMETER),
    *[
        (f"openmeter_package_{label}", "openmeter_package", [quantity], total, OPENMETER)
        for label, quantity, total in (
            ("0", 0, "0.00"),
            ("20", 20, "10.00"),
            ("20_1", "20.1", "20.00"),
            ("98", 98, "50.00"),
        )
    ],
    ("openmeter_overage_1000", "openmeter_overage", [1000], "9.00", OPENMETER),
    ("lago_package_201", "lago_package", [201], "10.00", f"{LAGO}/charge-models/package"),
    ("lago_volume_65000", "lago_volume", [65000], "49.00", f"{LAGO}/charge-models/volume"),
    (
        "lago_percentage",
        "lago_percentage",
        [200, 100, 100, 50],
        "0.70",
        f"{LAGO}/charge-models/percentage",
    ),
    ("lago_commitment_3", "lago_commitment", [3], "100.00", LAGO_COMMITMENT),
    ("lago_minimum_5000", "lago_spending_minimum", [5000], "100.00", f"{LAGO}/spending-minimum"),
    ("committed_2m", "committed_spend", [2_000_000], "1230.00", "PRODUCT.md scale_2026"),
    ("committed_500k", "committed_spend", [500_000], "1000.00", "PRODUCT.md scale_2026"),
    ("mid_change", "mid_change", [3100], "96.00", "decisions.md: version change prorates by days"),
    ("trial_advance", "recurring", None, "43.00", "decisions.md: trial, start day, in advance"),
    ("ends_mid_month", "recurring_arrears", None, "10.00", "decisions.md: end date exclusive"),
    ("yen_201", "yen", [201], "101", "decisions.md: JPY half-up"),
    ("tiny_price", "tiny_price", [1_000_000_000_000], "100000.00", "issue: 10^12 x $0.0000001"),
    ("override_20", "stripe_volume", [20], "20.00", "subscription overrides"),
]
SUBSCRIPTION_FIELDS = {
    "trial_advance": {"starts_on": "2026-01-10", "trial_ends_on": "2026-01-20"},
    "ends_mid_month": {"ends_on": "2026-01-11"},
    "override_20": {
        "overrides": {"charges": [{"id": "fonts", "model": "per_unit", "unit_price": "1"}]}
    },
}


def _write_inputs(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "accounts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "account_name", "currency"])
        for account, plan, *_ in EXAMPLES:
            writer.writerow(
                [account, account.replace("_", " ").title(), "JPY" if plan == "yen" else "USD"]
            )
    subscriptions = [
        {
            "account_id": account,
            "plan_code": plan,
            "starts_on": "2026-01-01",
            **SUBSCRIPTION_FIELDS.get(account, {}),
        }
        for account, plan, *_ in EXAMPLES
    ]
    (root / "subscriptions.yaml").write_text(yaml.safe_dump(subscriptions, sort_keys=False))
    with (root / "usage.ndjson").open("w") as handle:
        for account, _, values, _, _ in EXAMPLES:
            for day, value in enumerate(values or [], start=2):
                event = {
                    "uniqueId": f"{account}-{day}",
                    "account": account,
                    "meter": "payments" if account == "lago_percentage" else "units",
                    "value": str(value),
                    "ts": f"2026-01-{day:02d}T12:00:00Z",
                }
                handle.write(json.dumps(event) + "\n")
    return {
        "plans": CASE / "plans",
        "meters": CASE / "meters.csv",
        "accounts": root / "accounts.csv",
        "subscriptions": root / "subscriptions.yaml",
        "usage": root / "usage.ndjson",
    }


@pytest.fixture(scope="module")
def priced(tmp_path_factory) -> tuple[dict, list[dict], Path]:
    root = tmp_path_factory.mktemp("examples")
    inputs = _write_inputs(root / "in")
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
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    invoices = json.loads((out / "invoices.json").read_text())
    return summary, invoices, out


def _invoice(invoices: list[dict], account: str, period: str = "2026-01-01") -> dict:
    [invoice] = [i for i in invoices if i["account_id"] == account and i["period_start"] == period]
    return invoice


@pytest.mark.slow
@pytest.mark.parametrize(
    ("account", "expected_total", "source"),
    [(account, total, source) for account, _, _, total, source in EXAMPLES],
    ids=[account for account, *_ in EXAMPLES],
)
def test_worked_example_is_reproduced_exactly(priced, account, expected_total, source):
    _, invoices, _ = priced
    invoice = _invoice(invoices, account)
    assert invoice["total"] == expected_total, source
    assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == Decimal(expected_total)


def _lines(invoices, account) -> list[tuple[str, str | None, str]]:
    return [
        (line["line_type"], line["charge_id"], line["amount"])
        for line in _invoice(invoices, account)["lines"]
    ]


@pytest.mark.slow
def test_every_account_gets_one_january_invoice(priced):
    summary, invoices, _ = priced
    assert sorted(i["account_id"] for i in invoices if i["period_start"] == "2026-01-01") == sorted(
        account for account, *_ in EXAMPLES
    )
    assert summary["invoices"] == len(invoices)
    assert summary["outcomes"] == {"accepted": sum(len(v or []) for _, _, v, _, _ in EXAMPLES)}


@pytest.mark.slow
def test_adjustment_lines_follow_their_charges(priced):
    _, invoices, _ = priced
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
    _, invoices, _ = priced
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
    _, invoices, _ = priced
    lines = _invoice(invoices, "trial_advance")["lines"]
    assert sorted((line["invoice_line_id"], line["amount"]) for line in lines) == [
        ("inv-trial_advance-2026-01-01:advance:2026-01-10", "12.00"),
        ("inv-trial_advance-2026-01-01:advance:2026-02-01", "31.00"),
    ]


@pytest.mark.slow
def test_outputs_are_json_and_csv_with_exact_decimal_strings(priced):
    _, invoices, out = priced
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
        ({"account_id": "yen_201", "plan_code": "nope"}, "row 1: unknown plan 'nope'"),
        (
            {"account_id": "yen_201", "plan_code": "yen", "starts_on": "2026-02-30"},
            "row 1: starts_on: '2026-02-30' is not a date",
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
