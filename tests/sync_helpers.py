"""Shared pieces of the reverse-ETL tests: a small billed warehouse, the contract servers, and the
Dagster resources pointing at them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import dagster as dg

from dagster_billing.datagen import generate_events
from dagster_billing.paths import SEEDS_DIR
from tests.conftest import (
    close_period,
    copy_reference_seeds,
    copy_warehouse,
    make_warehouse,
    query,
    run_pipeline,
)

# copy_warehouse lives in conftest; tests of the reverse ETL import it from here too.
__all__ = ["copy_warehouse"]

# Two USD plans, one EUR plan, one JPY plan: 4 customers, 8 final invoices over January-February
# 2026 (the clock of `make demo`: after February's grace period, both months closed).
ACCOUNTS = ("acct_meridian", "acct_aurora", "acct_cobalt", "acct_granite")
BILLED_AS_OF = "2026-03-05T00:00:00"
CLIENT_SETTINGS = {
    "timeout_seconds": 1.0,
    "max_attempts": 8,
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
}
TIMEOUT_DELAY = 1.5  # a faulted response arrives after the client (1.0 s) has given up


def _only_accounts(name: str, column: int) -> str:
    header, *rows = (SEEDS_DIR / name).read_text().splitlines()
    return "\n".join([header, *[r for r in rows if r.split(",")[column] in ACCOUNTS]]) + "\n"


def build_billed_warehouse(root: Path):
    """Reference data for ACCOUNTS, ~800 generated events, the daily pipeline run once and
    January and February closed, as `make demo` does."""
    seeds = copy_reference_seeds(
        root / "seeds",
        **{
            "accounts.csv": _only_accounts("accounts.csv", 0),
            "subscriptions.csv": _only_accounts("subscriptions.csv", 1),
        },
    )
    warehouse = make_warehouse(root, seeds_dir=seeds)
    generate_events(
        warehouse.landing_dir,
        events=800,
        seed=3,
        accounts_csv=seeds / "accounts.csv",
        meters_csv=seeds / "meters.csv",
    )
    run_pipeline(warehouse, as_of=BILLED_AS_OF)
    close_period(warehouse, "2026-02-01", as_of=BILLED_AS_OF)
    return warehouse


def resources(warehouse, fakes, **overrides) -> dict:
    from dagster_billing.defs.sync.resources import (
        NetSuiteResource,
        SalesforceResource,
        StripeResource,
    )

    env = fakes.environment()
    netsuite = {
        "account_id": env["NETSUITE_ACCOUNT_ID"],
        "consumer_key": env["NETSUITE_CONSUMER_KEY"],
        "consumer_secret": env["NETSUITE_CONSUMER_SECRET"],
        "token_id": env["NETSUITE_TOKEN_ID"],
        "token_secret": env["NETSUITE_TOKEN_SECRET"],
        "base_url": env["NETSUITE_BASE_URL"],
        **CLIENT_SETTINGS,
        **overrides.get("netsuite", {}),
    }
    salesforce = {
        "login_url": env["SALESFORCE_LOGIN_URL"],
        "client_id": env["SALESFORCE_CLIENT_ID"],
        "client_secret": env["SALESFORCE_CLIENT_SECRET"],
        "ca_bundle": env["SALESFORCE_CA_BUNDLE"],
        **CLIENT_SETTINGS,
        **overrides.get("salesforce", {}),
    }
    stripe = {
        "api_key": env["STRIPE_API_KEY"],
        "api_base": env["STRIPE_API_BASE"],
        **CLIENT_SETTINGS,
        **overrides.get("stripe", {}),
    }
    return {
        "warehouse": warehouse,
        "netsuite": NetSuiteResource(**netsuite),
        "salesforce": SalesforceResource(**salesforce),
        "stripe": StripeResource(**stripe),
    }


def push_assets() -> list[dg.AssetsDefinition]:
    from dagster_billing.definitions import defs
    from dagster_billing.defs.sync.factory import is_push_asset

    return [a for a in defs.assets if is_push_asset(a)]


def sync(
    warehouse,
    fakes,
    *,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    **overrides,
) -> dg.ExecuteInProcessResult:
    """One run of every push asset (and its checks), as the billing_sync job does."""
    return dg.materialize(
        push_assets(),
        resources=resources(warehouse, fakes, **overrides),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def run_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Materialization metadata per push asset ("netsuite/invoices": {"created": 8, ...}); not
    payments/stripe_invoice_status, which reads rather than pushes (its own keys)."""
    return {
        event.materialization.asset_key.to_user_string(): {
            name: value.value for name, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if "model_rows" in event.materialization.metadata
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def reconciliation_differences(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """The `differences` of each push asset's matches_warehouse check ("netsuite/customers":
    {"missing": [...], "mismatched": [...], ...})."""
    return {
        e.asset_key.to_user_string(): e.metadata["differences"].value
        for e in result.get_asset_check_evaluations()
        if e.check_name == "matches_warehouse"
    }


def model_counts(warehouse) -> dict[str, int]:
    return {
        model: query(warehouse, f"select count(*) from sync.{model}")[0][0]
        for model in (
            "sync_netsuite__customers",
            "sync_netsuite__invoices",
            "sync_netsuite__credit_memos",
            "sync_salesforce__accounts",
            "sync_salesforce__invoices",
            "sync_stripe__customers",
            "sync_stripe__invoices",
            "sync_stripe__invoice_items",
        )
    }


def ledger_current(warehouse) -> dict[tuple[str, str], dict[str, int]]:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for destination, obj, status, n in query(
        warehouse,
        "select destination, object, status, count(*) from sync.ledger_current group by all",
    ):
        counts.setdefault((destination, obj), {})[status] = n
    return counts


def exact(payload: str) -> dict:
    """Parse a payload refusing any JSON number with a fraction or exponent (a float on the wire)."""

    def no_float(text: str) -> Decimal:
        raise AssertionError(f"payload carries a non-integer JSON number: {text}")

    return json.loads(payload, parse_float=no_float)


# A period lived through (tests/fixtures/lifecycle): acct_sim has a coupon and prepaid credits,
# acct_volume's builds are volume-priced, so late builds lower its final invoice.
LIFECYCLE = Path(__file__).parent / "fixtures" / "lifecycle"


def lifecycle_day_events(day) -> list[dict]:
    """acct_sim: 100 API calls and 1 build a day; acct_volume: 3 builds a day."""
    stamp = day.isoformat()
    events = [
        {"uniqueId": f"sim-api-{stamp}", "account": "acct_sim", "meter": "api.requests",
         "value": 100, "ts": f"{stamp}T12:00:00Z"},
        {"uniqueId": f"sim-build-{stamp}", "account": "acct_sim", "meter": "builds.completed",
         "value": 1, "ts": f"{stamp}T15:00:00Z"},
    ]  # fmt: skip
    events += [
        {"uniqueId": f"vol-build-{stamp}-{n}", "account": "acct_volume",
         "meter": "builds.completed", "value": 1, "ts": f"{stamp}T09:0{n}:00Z"}
        for n in range(3)
    ]  # fmt: skip
    return events


def write_events(warehouse, name: str, events: list[dict]) -> None:
    warehouse.landing_dir.mkdir(parents=True, exist_ok=True)
    (warehouse.landing_dir / name).write_text("".join(json.dumps(e) + "\n" for e in events))


def build_lifecycle_warehouse(root: Path, **extra_seeds: str):
    """The lifecycle accounts, plan, prepaid credits and acct_sim's coupon (not acct_volume's,
    so its January invoice is positive and a credit note can credit it); `extra_seeds` replace
    more seed files (name -> CSV text)."""
    from dagster_billing.pricing.plans import compile_plans

    coupons = (LIFECYCLE / "coupons.csv").read_text().splitlines()
    seeds = copy_reference_seeds(
        root / "seeds",
        **{
            name: (LIFECYCLE / name).read_text()
            for name in ("accounts.csv", "meters.csv", "credit_grants.csv", "subscriptions.csv")
        },
        **{"coupons.csv": "\n".join(line for line in coupons if "acct_volume" not in line) + "\n"},
        **extra_seeds,
    )
    compile_plans(LIFECYCLE / "plans", seeds)
    return make_warehouse(root, plans_dir=LIFECYCLE / "plans", seeds_dir=seeds)
