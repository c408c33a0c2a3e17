"""The input files of `billing price` staged as the pipeline's own inputs, leaving out what
cannot be priced: a bad plan leaves out the plan and the accounts on it, a bad account row or
subscription leaves out the account; everything else is priced. Every problem is kept, one per
plan or account, for the command to report (it then exits non-zero)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dagster_billing.paths import SEEDS_DIR
from dagster_billing.pricing.account_inputs import (
    BILLING_CYCLES,
    COUPONS,
    CREDITS,
    complete_billing_cycles,
    drop_accounts,
    write_account_table,
)
from dagster_billing.pricing.inputs import (
    InputProblem,
    read_meters,
    read_subscriptions,
    subscription_problems,
    write_accounts,
    write_empty_account_data,
    write_subscriptions,
    write_usage,
)
from dagster_billing.pricing.plan_loader import validate_plans
from dagster_billing.pricing.plans import (
    OVERRIDES_DIR,
    PlanError,
    Reference,
    load_plan_file,
    plan_files,
)


@dataclass
class StagedInputs:
    """What a run prices: seeds and plans to build from, and what was left out and why."""

    seeds_dir: Path
    plans_dir: Path
    usage_kind: str = "events"
    usage_rows: int = 0
    subscriptions: int = 0
    problems: list[InputProblem] = field(default_factory=list)

    @property
    def failed_accounts(self) -> list[str]:
        return sorted({p.account_id for p in self.problems if p.account_id})

    @property
    def failed_plans(self) -> list[str]:
        return sorted({p.plan_code for p in self.problems if p.plan_code and not p.account_id})


def stage_inputs(
    *,
    root: Path,
    plans_dir: Path,
    subscriptions: Path,
    accounts: Path,
    usage: Path,
    landing_dir: Path,
    meters: Path | None = None,
    coupons: Path | None = None,
    credits: Path | None = None,
    billing_cycles: Path | None = None,
) -> StagedInputs:
    """Seeds (root/seeds), plans (root/plans) and landing files for the pricable part of the
    inputs. Raises InputError only for a file that cannot be read at all."""
    staged = StagedInputs(seeds_dir=root / "seeds", plans_dir=root / "plans")
    staged.seeds_dir.mkdir(parents=True)
    shutil.copytree(plans_dir, staged.plans_dir, ignore=shutil.ignore_patterns("drafts"))
    shutil.copy(meters or SEEDS_DIR / "meters.csv", staged.seeds_dir / "meters.csv")
    shutil.copy(SEEDS_DIR / "currencies.csv", staged.seeds_dir / "currencies.csv")
    write_empty_account_data(staged.seeds_dir)
    reference = Reference.from_seeds(staged.seeds_dir)
    account_currencies, problems = write_accounts(
        accounts, staged.seeds_dir / "accounts.csv", set(reference.currencies)
    )
    meter_codes = set(reference.meters)
    for table, source in ((COUPONS, coupons), (CREDITS, credits), (BILLING_CYCLES, billing_cycles)):
        if source is not None:
            problems += write_account_table(
                table, source, staged.seeds_dir, account_currencies, meter_codes
            )
    rows, row_problems = read_subscriptions(
        subscriptions,
        staged.plans_dir / OVERRIDES_DIR,
        account_currencies,
        frozenset(problem.account_id for problem in problems if problem.account_id),
    )
    problems += row_problems

    validation = validate_plans(staged.plans_dir, Reference.from_seeds(staged.seeds_dir))
    for problem in validation.problems:
        known_code = problem.plan_code and not problem.plan_code.startswith("?")
        problems.append(
            InputProblem(
                problem.message, problem.account_id, problem.plan_code if known_code else None
            )
        )
    problems += subscription_problems(
        rows, account_currencies, validation.versions, validation.failed_plans, subscriptions
    )
    plan_intervals = {
        version.base_code: version.plan.billing_interval
        for version in validation.versions
        if version.account_id is None
    }
    intervals: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.plan_code in plan_intervals:
            intervals[row.account_id].add(plan_intervals[row.plan_code])
    problems += complete_billing_cycles(
        staged.seeds_dir, intervals, billing_cycles or subscriptions
    )
    staged.problems = problems
    failed_accounts = set(staged.failed_accounts)
    _remove_unpriced_plans(staged.plans_dir, validation, rows, failed_accounts)
    kept = [row for row in rows if row.account_id not in failed_accounts]
    write_subscriptions(staged.seeds_dir / "subscriptions.csv", kept)
    drop_accounts(staged.seeds_dir, failed_accounts)
    staged.subscriptions = len(kept)
    staged.usage_kind, staged.usage_rows, usage_problems = write_usage(
        usage, landing_dir, read_meters(staged.seeds_dir / "meters.csv")
    )
    staged.problems += usage_problems
    return staged


def _remove_unpriced_plans(plans_dir: Path, validation, rows, failed_accounts: set[str]) -> None:
    """The plan compiler asset reads the plans directory again: leave only what is priced."""
    bad_files = {problem.path for problem in validation.problems}
    for path in plan_files(plans_dir):
        try:
            code = load_plan_file(path).code
        except PlanError:
            code = None
        if path in bad_files or code is None or code in validation.failed_plans:
            path.unlink()
    for row in rows:
        if row.override_file is not None and row.account_id in failed_accounts:
            row.override_file.unlink(missing_ok=True)
    for path in bad_files:
        path.unlink(missing_ok=True)
