"""Simulation: price historical usage with draft plan versions next to the current plans.

A draft (plans/drafts/<any>.yaml, a plan version file) replaces every version of the plan with its
code for the whole history: the simulated invoices show what the accounts on that plan would have
owed under the draft. The warehouse is copied to a temporary directory, the rating models (and
their tests) are rebuilt there with the draft price tables by the same dbt project, and the
charge lines of both (int_invoice_charge_lines: everything owed before coupons and credits) are
compared in SQL. The warehouse and its invoices are never written.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import yaml

from dagster_billing.lib.money import format_money
from dagster_billing.pricing.plans import (
    DRAFTS_DIR,
    PlanError,
    Reference,
    check_plan_file,
    compile_plans,
    load_plan_file,
    load_yaml_exact,
    plan_files,
)

RATING_SELECTION = ("tag:rating",)

COMPARE_SQL = """
with current_lines as (
    select invoice_id, account_id, period_start, currency, minor_units, sum(amount) as amount
    from current_warehouse.intermediate.int_invoice_charge_lines
    group by all
),
draft_lines as (
    select invoice_id, account_id, period_start, currency, minor_units, sum(amount) as amount
    from draft_warehouse.intermediate.int_invoice_charge_lines
    group by all
)
select
    coalesce(c.invoice_id, d.invoice_id) as invoice_id,
    coalesce(c.account_id, d.account_id) as account_id,
    coalesce(c.period_start, d.period_start) as period_start,
    coalesce(c.currency, d.currency) as currency,
    coalesce(c.minor_units, d.minor_units) as minor_units,
    coalesce(c.amount, 0) as current_amount,
    coalesce(d.amount, 0) as draft_amount,
    coalesce(d.amount, 0) - coalesce(c.amount, 0) as difference
from current_lines as c
full outer join draft_lines as d on c.invoice_id = d.invoice_id
order by period_start, invoice_id
"""

BY_ACCOUNT_SQL = """
select account_id, currency, max(minor_units) as minor_units, count(*) as invoices,
       sum(current_amount) as current_amount, sum(draft_amount) as draft_amount,
       sum(difference) as difference
from compared
group by account_id, currency
order by account_id, currency
"""

TOTAL_SQL = """
select currency, max(minor_units) as minor_units, count(distinct account_id) as accounts,
       sum(current_amount) as current_amount, sum(draft_amount) as draft_amount,
       sum(difference) as difference,
       count(distinct case when difference != 0 then account_id end) as accounts_changed
from compared
group by currency
order by currency
"""


@dataclass(frozen=True)
class Draft:
    path: Path
    code: str
    version: int


def draft_files(draft_dir: Path) -> list[Path]:
    if not draft_dir.is_dir():
        return []
    return sorted([*draft_dir.rglob("*.yaml"), *draft_dir.rglob("*.yml")])


def build_simulation_plans(plans_dir: Path, draft_dir: Path, target: Path) -> list[Draft]:
    """A plans directory where every drafted plan code is replaced by its draft, which is in
    force from the first day of the plan's earliest current version (or its own date)."""
    drafts: dict[str, Draft] = {}
    for path in draft_files(draft_dir):
        plan = load_plan_file(path)
        if plan.code in drafts:
            raise PlanError(
                f"{path}: code: {plan.code!r} is drafted twice ({drafts[plan.code].path})"
            )
        drafts[plan.code] = Draft(path=path, code=plan.code, version=plan.version)
    target.mkdir(parents=True, exist_ok=True)
    earliest: dict[str, date] = {}
    for path in plan_files(plans_dir):
        plan = load_plan_file(path)
        if plan.code in drafts:
            earliest[plan.code] = min(
                earliest.get(plan.code, plan.effective_from), plan.effective_from
            )
            continue
        relative = path.relative_to(plans_dir)
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / relative)
    overrides = plans_dir / "overrides"
    if overrides.is_dir():
        shutil.copytree(overrides, target / "overrides")
    for code, draft in drafts.items():
        raw = load_yaml_exact(draft.path.read_text())
        if code in earliest:
            raw["effective_from"] = earliest[code]
        raw.pop("effective_to", None)
        (target / f"draft__{code}.yaml").write_text(yaml.safe_dump(_strings(raw), sort_keys=False))
    return sorted(drafts.values(), key=lambda draft: draft.code)


def _strings(value):
    """Decimals and dates as strings, which plan loading reads back exactly."""
    if isinstance(value, dict):
        return {key: _strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strings(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):
        return format(value, "f")
    return value


def copy_reference_seeds(seeds_dir: Path, target: Path) -> None:
    """Every seed but the compiled price tables, which compile_plans writes for the drafts."""
    for path in seeds_dir.glob("*.csv"):
        if not path.name.startswith("price_"):
            shutil.copy(path, target / path.name)


def validate_drafts(plans_dir: Path, seeds_dir: Path, draft_dir: Path) -> list[Draft]:
    """Compile the simulated plans once, so a bad draft fails with its file, path and reason."""
    reference = Reference.from_seeds(seeds_dir)
    for path in draft_files(draft_dir):
        check_plan_file(path, reference)
    with tempfile.TemporaryDirectory(prefix="billing-drafts-") as temp:
        root = Path(temp)
        drafts = build_simulation_plans(plans_dir, draft_dir, root / "plans")
        if drafts:
            (root / "seeds").mkdir()
            copy_reference_seeds(seeds_dir, root / "seeds")
            try:
                compile_plans(root / "plans", root / "seeds")
            except PlanError as error:
                message = str(error)
                for draft in drafts:
                    message = message.replace(
                        str(root / "plans" / f"draft__{draft.code}.yaml"), str(draft.path)
                    )
                raise PlanError(message) from None
    return drafts


@dataclass
class SimulationReport:
    drafts: list[Draft]
    invoices: list[dict]
    accounts: list[dict]
    totals: list[dict]
    files: list[Path]

    def to_dict(self) -> dict:
        return {
            "drafts": [
                {"code": draft.code, "version": draft.version, "file": str(draft.path)}
                for draft in self.drafts
            ],
            "totals": self.totals,
            "accounts": self.accounts,
            "files": [str(path) for path in self.files],
        }


def _formatted(rows: list[dict]) -> list[dict]:
    money = ("current_amount", "draft_amount", "difference")
    out = []
    for row in rows:
        item = {key: value for key, value in row.items() if key != "minor_units"}
        for key in money:
            item[key] = format_money(row[key], row["minor_units"])
        if "period_start" in item:
            item["period_start"] = row["period_start"].isoformat()
        out.append(item)
    return out


def compare(current_db: Path, draft_db: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Per invoice, per account and per currency: current vs draft charge totals (in SQL)."""
    connection = duckdb.connect()
    try:
        connection.execute(f"attach '{current_db}' as current_warehouse (read_only)")
        connection.execute(f"attach '{draft_db}' as draft_warehouse (read_only)")
        connection.execute(f"create temp table compared as {COMPARE_SQL}")
        results = []
        for sql in ("select * from compared", BY_ACCOUNT_SQL, TOTAL_SQL):
            cursor = connection.execute(sql)
            columns = [column[0] for column in cursor.description]
            results.append([dict(zip(columns, row, strict=True)) for row in cursor.fetchall()])
        return results[0], results[1], results[2]
    finally:
        connection.close()


def write_report(
    report_dir: Path,
    invoices: list[dict],
    accounts: list[dict],
    totals: list[dict],
    drafts: list[Draft],
) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in (
        ("by_invoice.csv", invoices),
        ("by_account.csv", accounts),
        ("totals.csv", totals),
    ):
        path = report_dir / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            fields = list(rows[0]) if rows else ["currency"]
            writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    summary = report_dir / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "drafts": [
                    {"code": d.code, "version": d.version, "file": str(d.path)} for d in drafts
                ],
                "totals": totals,
                "accounts": accounts,
            },
            indent=2,
        )
        + "\n"
    )
    written.append(summary)
    return written


class SimulationUnsupported(RuntimeError):
    """Simulation needs a copy of the warehouse, which only the DuckDB engine makes today."""


def simulate(*, warehouse, dbt, draft_dir: Path, report_dir: Path, log=print) -> SimulationReport:
    """Rate the warehouse's history with the drafts in a temporary copy and compare."""
    from dagster_billing.defs.dbt.project import billing_project
    from dagster_billing.defs.resources import BillingWarehouse
    from dagster_billing.pricing.batch import staged_seed_dir

    plans_dir = Path(warehouse.plans_dir)
    seeds_dir = Path(warehouse.seeds_dir)
    with tempfile.TemporaryDirectory(prefix="billing-simulate-") as temp:
        root = Path(temp)
        drafts = build_simulation_plans(plans_dir, draft_dir, root / "plans")
        if not drafts:
            return SimulationReport(drafts=[], invoices=[], accounts=[], totals=[], files=[])
        if warehouse.resolved_engine != "duckdb":
            raise SimulationUnsupported(
                "plan simulation copies the DuckDB warehouse; it is not available with "
                f"BILLING_ENGINE={warehouse.resolved_engine} yet (docs/spark.md)"
            )
        sim_seeds = root / "seeds"
        sim_seeds.mkdir()
        copy_reference_seeds(seeds_dir, sim_seeds)
        compile_plans(root / "plans", sim_seeds)
        sim = BillingWarehouse(
            data_dir=str(root / "data"),
            plans_dir=str(root / "plans"),
            seeds_dir=str(sim_seeds),
            engine="duckdb",
        )
        sim.root.mkdir(parents=True)
        shutil.copy(warehouse.duckdb_path, sim.duckdb_path)
        # The raw layer is read, never written, by a simulation: the copy points at the original.
        if warehouse.raw_store.root.exists():
            sim.raw_store.root.symlink_to(warehouse.raw_store.root, target_is_directory=True)
        log(f"simulating {', '.join(d.code for d in drafts)} on a copy of {warehouse.duckdb_path}")
        try:
            with sim.dbt_environment():
                dbt.cli(
                    [
                        "build",
                        "--select",
                        *RATING_SELECTION,
                        "--exclude-resource-type",
                        "unit_test",
                    ],
                    manifest=billing_project.manifest_path,
                    raise_on_error=True,
                ).wait()
        finally:
            shutil.rmtree(staged_seed_dir(sim_seeds), ignore_errors=True)
        invoices, accounts, totals = compare(warehouse.duckdb_path, sim.duckdb_path)
    invoices, accounts, totals = _formatted(invoices), _formatted(accounts), _formatted(totals)
    files = write_report(report_dir, invoices, accounts, totals, drafts)
    return SimulationReport(
        drafts=drafts, invoices=invoices, accounts=accounts, totals=totals, files=files
    )


__all__ = [
    "DRAFTS_DIR",
    "SimulationReport",
    "SimulationUnsupported",
    "build_simulation_plans",
    "compare",
    "simulate",
]
