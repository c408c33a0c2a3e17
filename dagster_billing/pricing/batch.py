"""`billing price`: price input files with the pipeline itself, on a temporary warehouse.

The files become the pipeline's own inputs (seed CSVs, plans, landing files, see inputs.py), then
the same Dagster assets that `billing_pipeline` runs (plan compiler, landing, every dbt model
with its tests, the finance checks) are materialized in process on a temporary data directory,
and the invoices are read back from billing.fct_invoices / billing.fct_invoice_lines. Nothing is
priced in Python: amounts are shipped as dbt computed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dagster_billing.defs import groups
from dagster_billing.defs.dbt.partitions import USAGE_DAY_PARTITIONS
from dagster_billing.lib.csv_safe import write_csv
from dagster_billing.lib.money import format_decimal, format_money
from dagster_billing.paths import DBT_PROJECT_DIR
from dagster_billing.pricing.staging import stage_inputs

MONEY_TYPE = "DECIMAL(38,4)"
# Asset groups from the plans and landing to the billing marts: everything invoices are made of,
# and nothing that exports or pushes them anywhere (nor the draft-plan simulation of `rating`).
PRICING_GROUPS = (
    groups.REFERENCE,
    groups.LANDING,
    groups.USAGE,
    groups.RATING,
    groups.DRAFTS,
    groups.BILLING,
)


class PricingFailed(RuntimeError):
    """The pipeline did not price the files (a failed dbt test or asset check)."""


@dataclass
class PricingResult:
    out_dir: Path
    invoices: int
    lines: int
    totals: dict[str, str]
    usage_kind: str
    usage_rows: int
    outcomes: dict[str, int]
    quarantine_reasons: dict[str, int]
    seconds: float
    files: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    failed_accounts: list[str] = field(default_factory=list)
    failed_plans: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "failed_accounts": self.failed_accounts,
            "failed_plans": self.failed_plans,
            "errors": self.problems,
            "invoices": self.invoices,
            "lines": self.lines,
            "totals": self.totals,
            "usage": {"kind": self.usage_kind, "rows": self.usage_rows},
            "outcomes": self.outcomes,
            "quarantine_reasons": self.quarantine_reasons,
            "seconds": round(self.seconds, 1),
            "files": self.files,
        }


def prepare_dbt_manifest() -> None:
    """dagster-dbt reads dbt's manifest when the definitions are imported; build it first."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    from dagster_billing.defs.dbt.project import billing_project

    manifest = Path(billing_project.manifest_path)
    sources = [
        path
        for folder in ("models", "macros", "tests")
        for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.is_file()
    ] + [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    if manifest.exists() and manifest.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return
    billing_project.preparer.prepare(billing_project)


def materialize_invoices(warehouse) -> None:
    """Run the pipeline's assets up to the billing marts (with their checks), in process."""
    import dagster as dg

    from dagster_billing.definitions import pipeline_assets_and_checks
    from dagster_billing.defs.jobs import LEDGER
    from dagster_billing.defs.pricing.simulation import SIMULATION_KEY
    from dagster_billing.defs.resources import dbt_resource

    # The ledger is partitioned by billing period (invoices priced here stay drafts); webhook
    # deliveries feed the outbox but are not in process: materializable() keeps what runs here.
    selection = (
        dg.AssetSelection.groups(*PRICING_GROUPS).upstream().required_multi_asset_neighbors()
        - LEDGER
        - dg.AssetSelection.assets(SIMULATION_KEY)
    ).materializable()
    # dbt's progress goes to stderr: stdout is for the command's result.
    with contextlib.redirect_stdout(sys.stderr):
        result = dg.materialize(
            pipeline_assets_and_checks(),
            selection=selection,
            # Usage models are daily-partitioned: a new warehouse rebuilds every day with events,
            # whichever day the run is for. Invoices come out as drafts (nothing is closed here).
            partition_key=datetime.now(UTC).strftime(USAGE_DAY_PARTITIONS.fmt),
            resources={"warehouse": warehouse, "dbt": dbt_resource()},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    failed_checks = [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    if not result.success or failed_checks:
        failures = [
            error_chain(event.step_failure_data.error)
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ]
        detail = "; ".join(failed_checks + failures)[-4000:]
        raise PricingFailed(f"the pipeline failed on these files: {detail}")


def error_chain(error) -> str:
    """A Dagster step error and its causes, innermost last, without tracebacks."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return " <- ".join(messages)


def staged_seed_dir(seeds_dir: Path) -> Path:
    # Where BillingWarehouse.dbt_environment() stages reference data that lives outside the
    # repository (see defs/resources.py); removed after a run so temp runs leave nothing behind.
    digest = hashlib.sha256(str(seeds_dir.resolve()).encode()).hexdigest()[:16]
    return DBT_PROJECT_DIR / ".reference" / digest


def price_files(
    *,
    plans_dir: Path,
    subscriptions: Path,
    accounts: Path,
    usage: Path,
    out_dir: Path,
    meters: Path | None = None,
    keep_data_dir: Path | None = None,
    coupons: Path | None = None,
    credits: Path | None = None,
    billing_cycles: Path | None = None,
) -> PricingResult:
    """Price the files with the pipeline and write invoices (JSON and CSV) into out_dir. Plans
    and accounts that cannot be priced are left out and reported in the result's problems."""
    started = time.perf_counter()
    prepare_dbt_manifest()
    from dagster_billing.defs.resources import BillingWarehouse

    with tempfile.TemporaryDirectory(prefix="billing-price-") as temp:
        root = Path(temp)
        data_dir = keep_data_dir or root / "data"
        warehouse = BillingWarehouse(
            data_dir=str(data_dir), plans_dir=str(root / "plans"), seeds_dir=str(root / "seeds")
        )
        staged = stage_inputs(
            root=root,
            plans_dir=plans_dir,
            subscriptions=subscriptions,
            accounts=accounts,
            usage=usage,
            landing_dir=warehouse.landing_dir,
            meters=meters,
            coupons=coupons,
            credits=credits,
            billing_cycles=billing_cycles,
        )
        invoices: Table = ([], [])
        lines: Table = ([], [])
        tiers: Table = ([], [])
        outcomes: dict[str, int] = {}
        reasons: dict[str, int] = {}
        if staged.subscriptions:
            try:
                materialize_invoices(warehouse)
            finally:
                shutil.rmtree(staged_seed_dir(staged.seeds_dir), ignore_errors=True)
            with warehouse.connect(read_only=True) as connection:
                invoices = _fetch(
                    connection,
                    "select * from billing.fct_invoices order by period_start, invoice_id",
                )
                lines = _fetch(connection, LINES_SQL)
                tiers = _fetch(connection, TIERS_SQL)
                outcomes = dict(
                    connection.execute(
                        "select outcome, count(*) from billing.fct_usage_event_outcomes group by 1"
                    ).fetchall()
                )
                reasons = dict(
                    connection.execute(
                        "select reason, count(*) from billing.fct_usage_event_outcomes "
                        "where outcome = 'quarantined' group by 1 order by 1"
                    ).fetchall()
                )
    files = write_outputs(invoices, lines, tiers, out_dir)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    minor_units: dict[str, int] = {}
    for invoice in invoices[1]:
        totals[invoice["currency"]] += invoice["total"]
        minor_units[invoice["currency"]] = invoice["minor_units"]
    return PricingResult(
        out_dir=out_dir,
        invoices=len(invoices[1]),
        lines=len(lines[1]),
        totals={
            currency: format_money(total, minor_units[currency])
            for currency, total in sorted(totals.items())
        },
        usage_kind=staged.usage_kind,
        usage_rows=staged.usage_rows,
        outcomes=dict(sorted(outcomes.items())),
        quarantine_reasons=reasons,
        seconds=time.perf_counter() - started,
        files=files,
        problems=[problem.to_dict() for problem in staged.problems],
        failed_accounts=staged.failed_accounts,
        failed_plans=staged.failed_plans,
    )


Table = tuple[list[tuple[str, str]], list[dict[str, Any]]]


# Invoice lines with what rating counted for them (billable quantity after free units, packages
# or blocks, transactions), and the tiers each usage line reached: enough to check every amount
# by hand. Rating's invoice line ids are the invoice's.
LINES_SQL = """
select lines.*, rated.billable_quantity, rated.package_count, rated.transaction_count
from billing.fct_invoice_lines as lines
left join billing.fct_rated_usage as rated on lines.invoice_line_id = rated.invoice_line_id
order by lines.invoice_id, lines.line_number
"""
TIERS_SQL = """
select invoice_line_id, tier_number, lower_bound, upper_bound, unit_price, block_size,
    rate_percent, tier_quantity, flat_fee_charged, package_count, amount_unrounded
from intermediate.int_usage_rated
where tier_quantity > 0 or flat_fee_charged > 0
order by invoice_line_id, tier_number
"""


def _fetch(connection, sql: str) -> Table:
    """Every column of a query with its DuckDB type, in order."""
    cursor = connection.execute(sql)
    columns = [(column[0], str(column[1])) for column in cursor.description]
    rows = [dict(zip([name for name, _ in columns], row, strict=True)) for row in cursor.fetchall()]
    return columns, rows


def _value(value: Any, column_type: str, minor_units: int | None) -> Any:
    """A JSON/CSV value: rounded money with its currency's places, other decimals exactly."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        if column_type == MONEY_TYPE and minor_units is not None:
            return format_money(value, minor_units)
        return format_decimal(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _plain_rows(table: Table) -> list[dict[str, Any]]:
    columns, rows = table
    return [
        {
            name: _value(row[name], column_type, row.get("minor_units"))
            for name, column_type in columns
        }
        for row in rows
    ]


def write_outputs(invoices: Table, lines: Table, tiers: Table, out_dir: Path) -> list[str]:
    """invoices.json (invoices with their lines, each usage line with its tiers), invoices.csv,
    invoice_lines.csv and invoice_line_tiers.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    invoice_rows = _plain_rows(invoices)
    line_rows = _plain_rows(lines)
    tier_rows = _plain_rows(tiers)
    by_line: dict[str, list[dict]] = defaultdict(list)
    for tier in tier_rows:
        by_line[tier["invoice_line_id"]].append(
            {key: value for key, value in tier.items() if key != "invoice_line_id"}
        )
    by_invoice: dict[str, list[dict]] = defaultdict(list)
    for line in line_rows:
        by_invoice[line["invoice_id"]].append({**line, "tiers": by_line[line["invoice_line_id"]]})
    document = [{**invoice, "lines": by_invoice[invoice["invoice_id"]]} for invoice in invoice_rows]
    (out_dir / "invoices.json").write_text(json.dumps(document, indent=2) + "\n")
    for name, (columns, _), rows in (
        ("invoices.csv", invoices, invoice_rows),
        ("invoice_lines.csv", lines, line_rows),
        ("invoice_line_tiers.csv", tiers, tier_rows),
    ):
        header = [column for column, _ in columns]
        write_csv(out_dir / name, header, ([row[column] for column in header] for row in rows))
    return ["invoices.json", "invoices.csv", "invoice_lines.csv", "invoice_line_tiers.csv"]


def outcome_warnings(result: PricingResult) -> list[str]:
    quarantined = result.outcomes.get("quarantined", 0)
    if not quarantined:
        return []
    reasons = ", ".join(
        f"{reason} {count}" for reason, count in Counter(result.quarantine_reasons).items()
    )
    return [f"{quarantined} usage rows were quarantined and not priced ({reasons})"]
