"""Simulation: price historical usage with draft plan versions next to the current plans.

A draft (plans/drafts/<any>.yaml, a plan version file) is in force from its effective_from to its
effective_to (or the next draft of its plan, or open): on those days it replaces the current
versions of the plan with its code, which stay in force on every other day. A draft v2 from
March changes March onward; several drafts of one plan follow each other. The warehouse is copied
to a temporary directory, the rating models (and their tests) are rebuilt there with the draft
price tables by the same dbt project, and the charge lines of both (int_invoice_charge_lines:
everything owed before coupons and credits) are compared in SQL. The warehouse and its invoices
are never written. On Spark the copy is of warehouse.duckdb's views over the Spark tables, and
the rating models are rebuilt in it on DuckDB (_unpublish_rated_tables).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import yaml

from dagster_billing.lib.csv_safe import write_csv
from dagster_billing.lib.money import format_money
from dagster_billing.pricing.plan_loader import windowed_versions
from dagster_billing.pricing.plans import (
    DRAFTS_DIR,
    PlanError,
    PlanVersion,
    Reference,
    check_plan_file,
    compile_plans,
    load_plan_file,
    load_yaml_exact,
    plan_files,
)

RATING_TAG = "rating"
RATING_SELECTION = (f"tag:{RATING_TAG}",)

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
    effective_from: date
    effective_to: date | None = None
    """Exclusive end of the days the draft is simulated on (None: open)."""


def draft_files(draft_dir: Path) -> list[Path]:
    if not draft_dir.is_dir():
        return []
    return sorted([*draft_dir.rglob("*.yaml"), *draft_dir.rglob("*.yml")])


def _draft_windows(draft_dir: Path) -> dict[str, list[tuple[Draft, dict]]]:
    """The drafts per plan code in effective_from order, each with its window and raw YAML."""
    by_code: dict[str, list[tuple[PlanVersion, Path]]] = defaultdict(list)
    for path in draft_files(draft_dir):
        by_code[load_plan_file(path).code].append((load_plan_file(path), path))
    windows: dict[str, list[tuple[Draft, dict]]] = {}
    for code, drafts in sorted(by_code.items()):
        drafts.sort(key=lambda item: item[0].effective_from)
        windows[code] = []
        for index, (plan, path) in enumerate(drafts):
            end = plan.effective_to
            if index + 1 < len(drafts):
                following, following_path = drafts[index + 1]
                if following.effective_from == plan.effective_from:
                    raise PlanError(
                        f"{following_path}: effective_from: {code!r} is drafted twice from "
                        f"{plan.effective_from} ({path})"
                    )
                if end is not None and end > following.effective_from:
                    raise PlanError(
                        f"{path}: effective_to: draft of {code!r} overlaps {following_path}, "
                        f"which starts {following.effective_from}"
                    )
                end = end or following.effective_from
            draft = Draft(path, code, plan.version, plan.effective_from, end)
            windows[code].append((draft, load_yaml_exact(path.read_text())))
    return windows


def _outside(start: date, end: date | None, windows: list[Draft]) -> list[tuple[date, date | None]]:
    """The parts of [start, end) that no draft window covers."""
    pieces: list[tuple[date, date | None]] = []
    cursor: date | None = start
    for draft in windows:
        draft_end = draft.effective_to or date.max
        if (
            cursor is None
            or draft_end <= cursor
            or (end is not None and draft.effective_from >= end)
        ):
            continue
        if draft.effective_from > cursor:
            pieces.append((cursor, draft.effective_from))
        cursor = None if draft.effective_to is None else max(cursor, draft.effective_to)
    if cursor is not None and (end is None or cursor < end):
        pieces.append((cursor, end))
    return pieces


def build_simulation_plans(plans_dir: Path, draft_dir: Path, target: Path) -> list[Draft]:
    """A plans directory where every draft is in force on the days of its window, and the
    current versions of its plan on the other days (renumbered in date order)."""
    drafts = _draft_windows(draft_dir)
    target.mkdir(parents=True, exist_ok=True)
    current: dict[str, list[tuple[PlanVersion, Path]]] = defaultdict(list)
    for path in plan_files(plans_dir):
        plan = load_plan_file(path)
        if plan.code not in drafts:
            relative = path.relative_to(plans_dir)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / relative)
        else:
            current[plan.code].append((plan, path))
    overrides = plans_dir / "overrides"
    if overrides.is_dir():
        shutil.copytree(overrides, target / "overrides")
    for code, windowed in drafts.items():
        in_force = [draft for draft, _ in windowed]
        pieces = [(draft.effective_from, draft.effective_to, raw) for draft, raw in windowed]
        for plan, path, end in windowed_versions(current).get(code, []):
            raw = load_yaml_exact(path.read_text())
            pieces += [(a, b, raw) for a, b in _outside(plan.effective_from, end, in_force)]
        for version, (start, end, raw) in enumerate(sorted(pieces, key=lambda p: p[0]), start=1):
            version_file = {**raw, "version": version, "effective_from": start}
            version_file.pop("effective_to", None)
            if end is not None:
                version_file["effective_to"] = end
            (target / f"draft__{code}__{version}.yaml").write_text(
                yaml.safe_dump(_strings(version_file), sort_keys=False)
            )
    return [draft for windowed in drafts.values() for draft, _ in windowed]


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
                message = re.sub(
                    re.escape(str(root / "plans")) + r"/draft__([^/]+?)__\d+\.yaml",
                    lambda match: f"{draft_dir} (simulated {match.group(1)})",
                    str(error),
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
            "drafts": [_draft_dict(draft) for draft in self.drafts],
            "totals": self.totals,
            "accounts": self.accounts,
            "files": [str(path) for path in self.files],
        }


def _draft_dict(draft: Draft) -> dict:
    return {
        "code": draft.code,
        "version": draft.version,
        "effective_from": draft.effective_from.isoformat(),
        "effective_to": draft.effective_to.isoformat() if draft.effective_to else None,
        "file": str(draft.path),
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
        fields = list(rows[0]) if rows else ["currency"]
        written.append(
            write_csv(report_dir / name, fields, ([row[field] for field in fields] for row in rows))
        )
    summary = report_dir / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "drafts": [_draft_dict(draft) for draft in drafts],
                "totals": totals,
                "accounts": accounts,
            },
            indent=2,
        )
        + "\n"
    )
    written.append(summary)
    return written


def spark_rebuilt_nodes(manifest_path: Path) -> dict[str, dict]:
    """What a simulation of a Spark warehouse rebuilds on DuckDB, by unique id: the rating
    models and every seed they read (an empty Spark table has no file to publish, so the seeds
    are loaded again in the copy)."""
    manifest = json.loads(Path(manifest_path).read_text())
    nodes, parents = manifest["nodes"], manifest["parent_map"]
    rated = {key for key, node in nodes.items() if RATING_TAG in node["tags"]}
    ancestors, pending = set(), list(rated)
    while pending:
        for parent in parents.get(pending.pop(), []):
            if parent not in ancestors:
                ancestors.add(parent)
                pending.append(parent)
    return {
        key: nodes[key]
        for key in sorted(rated | {key for key in ancestors if key.startswith("seed.")})
        if nodes[key]["resource_type"] in ("model", "seed")
    }


def _unpublish_rated_tables(sim, rebuilt: dict[str, dict]) -> None:
    """On Spark, warehouse.duckdb holds views over the Spark tables' Parquet files
    (lib/spark_tables.py): the copy's rating models are rebuilt as DuckDB tables by the embedded
    engine, reading their inputs through the views, read only. The views of what the copy
    rebuilds (`rebuilt`) are dropped first: dbt will not seed into a view."""
    with sim.connect() as connection:
        views = set(
            connection.execute(
                "select schema_name, view_name from duckdb_views() where not internal"
            ).fetchall()
        )
        for node in rebuilt.values():
            if (node["schema"], node["alias"]) in views:
                connection.execute(f'drop view "{node["schema"]}"."{node["alias"]}"')


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
        selection = RATING_SELECTION
        if warehouse.resolved_engine == "spark":
            rebuilt = spark_rebuilt_nodes(billing_project.manifest_path)
            _unpublish_rated_tables(sim, rebuilt)
            # dbt's fqn selector: package.path.name, exactly these nodes.
            selection = tuple(".".join(node["fqn"]) for node in rebuilt.values())
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
                        " ".join(selection),
                        # Only the tests of what the copy rebuilds: a test that also reads a
                        # node outside the selection (a seed's relationship to accounts) may
                        # read a table the copy does not have (on Spark, only the rebuilt
                        # nodes' inputs are views).
                        "--indirect-selection",
                        "cautious",
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
    "build_simulation_plans",
    "compare",
    "simulate",
]
