"""Reading plan files: YAML as exact decimals, validation with file and path in every error,
reference checks (meters, currencies), version windows and account overrides."""

from __future__ import annotations

import copy
import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dagster_billing.pricing.plan_charges import (
    PRICE_MODELS,
    SUM_METER_MODELS,
    FlatCharge,
    SeatCharge,
)
from dagster_billing.pricing.plan_schema import PlanOverride, PlanVersion
from dagster_billing.pricing.plan_types import (
    ALL_DIMENSIONS,
    DRAFTS_DIR,
    MAX_AMOUNT,
    MAX_DIMENSION_KEYS,
    MAX_QUANTITY,
    OVERRIDE_SEPARATOR,
    OVERRIDES_DIR,
    PlanError,
    dimension_keys,
)


@dataclass(frozen=True)
class CompiledVersion:
    """A plan version as it is priced: its window, and for overrides the account."""

    plan: PlanVersion
    effective_to: date | None
    base_code: str
    account_id: str | None = None

    @property
    def plan_code(self) -> str:
        if self.account_id is None:
            return self.base_code
        return f"{self.base_code}{OVERRIDE_SEPARATOR}{self.account_id}"


@dataclass(frozen=True)
class Reference:
    """The reference data plans are checked against."""

    meters: dict[str, dict[str, str]]
    currencies: dict[str, int]
    accounts: set[str] | None = None

    @classmethod
    def from_seeds(cls, seeds_dir: Path) -> Reference:
        meters = {row["meter_code"]: row for row in _read_rows(seeds_dir / "meters.csv")}
        currencies = {
            row["currency_code"]: int(row["minor_units"])
            for row in _read_rows(seeds_dir / "currencies.csv")
        }
        accounts_path = seeds_dir / "accounts.csv"
        accounts = (
            {row["account_id"] for row in _read_rows(accounts_path)}
            if accounts_path.exists()
            else None
        )
        return cls(meters=meters, currencies=currencies, accounts=accounts)


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as Decimal from their source text."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node))
)


def _format_location(loc: tuple, charge_ids: list[str] | None = None) -> str:
    path = ""
    parts = list(loc)
    for position, part in enumerate(parts):
        previous = parts[position - 1] if position else None
        if isinstance(part, str) and part in PRICE_MODELS and isinstance(previous, int):
            continue  # pydantic's union tag, not a field of the file
        if isinstance(part, int):
            if previous == "charges" and charge_ids is not None and part < len(charge_ids):
                path += f"[{charge_ids[part]}]"
            else:
                path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _error_message(error: dict) -> str:
    if error["type"] == "union_tag_invalid":
        return f"model: unknown price model {error['ctx']['tag']!r}; expected one of " + ", ".join(
            PRICE_MODELS
        )
    if error["type"] == "union_tag_not_found":
        return "model: Field required (one of " + ", ".join(PRICE_MODELS) + ")"
    if error["type"] == "less_than" and error.get("ctx", {}).get("lt") in LIMITS:
        return f"{error['msg']} ({LIMITS[error['ctx']['lt']]})"
    return error["msg"]


LIMITS = {
    MAX_AMOUNT: "10^12: the largest price or amount a plan may state",
    MAX_QUANTITY: "10^18: the largest quantity a plan may state",
}


def describe_validation_error(error: ValidationError, charge_ids: list[str] | None = None) -> str:
    """A pydantic error as `path: reason; ...` with the paths of the plan file."""
    problems = []
    for item in error.errors(include_url=False):
        location = _format_location(item["loc"], charge_ids)
        message = _error_message(item)
        if message.startswith("model: ") and location != "(top level)":
            problems.append(f"{location}.{message}")
        else:
            problems.append(f"{location}: {message}")
    return "; ".join(problems)


def load_yaml_exact(text: str) -> Any:
    """YAML with every float read as an exact Decimal from its source text."""
    return yaml.load(text, Loader=_DecimalLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml_exact(path.read_text())
    except yaml.YAMLError as error:
        raise PlanError(f"{path}: not valid YAML: {error}") from None


def load_plan_file(path: Path) -> PlanVersion:
    return _validate_plan(_read_yaml(path), path)


def _validate_plan(raw: Any, path: Path, charge_ids: list[str] | None = None) -> PlanVersion:
    try:
        return PlanVersion.model_validate(raw)
    except ValidationError as error:
        raise PlanError(f"{path}: {describe_validation_error(error, charge_ids)}") from None


def check_plan_file(path: Path, reference: Reference) -> PlanVersion:
    """A plan file validated on its own and against the reference data."""
    plan = load_plan_file(path)
    _check_reference(plan, path, reference)
    return plan


def load_override_file(path: Path) -> PlanOverride:
    raw = _read_yaml(path)
    try:
        return PlanOverride.model_validate(raw)
    except ValidationError as error:
        raise PlanError(f"{path}: {describe_validation_error(error)}") from None


def plan_files(plans_dir: Path) -> list[Path]:
    """Plan version files: every *.yaml/*.yml under plans_dir except overrides/ and drafts/."""
    skipped = {plans_dir / OVERRIDES_DIR, plans_dir / DRAFTS_DIR}
    files = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in plans_dir.rglob(pattern)
        if not any(parent in skipped for parent in path.parents)
    ]
    return sorted(files)


def override_files(plans_dir: Path) -> list[Path]:
    directory = plans_dir / OVERRIDES_DIR
    if not directory.is_dir():
        return []
    return sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])


def reference_problems(plan: PlanVersion, reference: Reference) -> list[str]:
    """`location: reason` for every meter, currency and dimension the reference data refutes.
    Amounts may have more decimal places than the currency: they are rounded on their line."""
    if plan.currency not in reference.currencies:
        return [f"currency: unknown currency {plan.currency!r}"]
    problems = []
    for index, charge in enumerate(plan.charges):
        at = f"charges[{index}]"
        if isinstance(charge, FlatCharge):
            continue
        meter = reference.meters.get(charge.meter)
        if meter is None:
            problems.append(f"{at}.meter: unknown meter {charge.meter!r}")
            continue
        if charge.aggregation is not None and charge.aggregation != meter["aggregation"]:
            problems.append(
                f"{at}.aggregation: meter {charge.meter!r} aggregates by "
                f"{meter['aggregation']!r}, not {charge.aggregation!r}"
            )
        problems += _dimension_problems(charge, meter, at)
        if charge.model in SUM_METER_MODELS and meter["aggregation"] != "sum":
            problems.append(
                f"{at}.meter: a {charge.model} charge needs a sum meter (transaction "
                f"values); {charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
        if getattr(charge, "pay_in_advance", False) and meter["aggregation"] not in (
            "sum",
            "count",
        ):
            problems.append(
                f"{at}.pay_in_advance: needs a sum or count meter (each event adds to the "
                f"quantity); {charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
        if (
            getattr(charge, "proration", "none") == "daily"
            and meter["aggregation"] != "unique_count"
        ):
            problems.append(
                f"{at}.proration: daily proration needs a unique_count meter (seats held by "
                f"day); {charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
        if isinstance(charge, SeatCharge) and meter["aggregation"] != "unique_count":
            problems.append(
                f"{at}.meter: a seat charge needs a unique_count meter; "
                f"{charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
    return problems


# Aggregations whose quantity over several combinations is their combinations' quantities
# summed (max: the largest): the ones a partial filter may price (decision 81).
PARTIAL_FILTER_AGGREGATIONS = ("sum", "count", "max")


def _dimension_problems(charge: Any, meter: dict[str, str], at: str) -> list[str]:
    """The charge's filters and group_by against the meter's dimension keys."""
    keys = dimension_keys(meter.get("dimension_key"))
    known = meter.get("dimension_key") or "no dimension"
    if len(keys) > MAX_DIMENSION_KEYS:
        return [f"{at}: meter {charge.meter!r} has more than {MAX_DIMENSION_KEYS} dimension keys"]
    problems = []
    used = [key for filter_ in charge.dimension_filters for key in filter_] + charge.group_keys
    for key in dict.fromkeys(used):
        if key not in keys:
            problems.append(f"{at}: meter {charge.meter!r} has {known}; cannot price by {key!r}")
    if problems or len(keys) < 2:
        return problems
    if charge.group_keys and sorted(charge.group_keys) != sorted(keys):
        problems.append(
            f"{at}.group_by: meter {charge.meter!r} has several keys ({known}); group_by lists "
            f"all of them (one line per combination), not {charge.group_keys}"
        )
    for filter_ in charge.dimension_filters:
        if ALL_DIMENSIONS in filter_.values():
            problems.append(f"{at}: {ALL_DIMENSIONS!r} is not a dimension value to filter on")
        if len(filter_) < len(keys) and meter["aggregation"] not in PARTIAL_FILTER_AGGREGATIONS:
            problems.append(
                f"{at}: a filter on some of the keys of {charge.meter!r} sums the quantities of "
                f"its combinations, which needs a sum, count or max meter, not "
                f"{meter['aggregation']!r}; filter on every key ({known})"
            )
    return problems


def _check_reference(plan: PlanVersion, path: Path, reference: Reference, where: str = "") -> None:
    problems = reference_problems(plan, reference)
    if problems:
        raise PlanError(f"{path}: {where}" + f"; {where}".join(problems))


def windowed_versions(
    versions: dict[str, list[tuple[PlanVersion, Path]]],
) -> dict[str, list[tuple[PlanVersion, Path, date | None]]]:
    """Per plan code, its versions in version order, each with its exclusive end."""
    windowed = {}
    for code in sorted(versions):
        ordered = sorted(versions[code], key=lambda item: (item[0].version, str(item[1])))
        windowed[code] = [
            (plan, path, end) for (plan, path), end in zip(ordered, _windows(ordered), strict=True)
        ]
    return windowed


def _windows(ordered: list[tuple[PlanVersion, Path]]) -> list[date | None]:
    """Exclusive end of each version: its effective_to, else the next version's start."""
    ends: list[date | None] = []
    for index, (plan, path) in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        end = plan.effective_to
        if following is not None:
            next_plan, next_path = following
            if next_plan.version == plan.version:
                raise PlanError(
                    f"{next_path}: version: plan {plan.code!r} version {plan.version} "
                    f"is also defined in {path}"
                )
            if next_plan.effective_from <= plan.effective_from:
                raise PlanError(
                    f"{next_path}: effective_from: version {next_plan.version} of {plan.code!r} "
                    f"must start after version {plan.version} ({plan.effective_from})"
                )
            if end is not None and end > next_plan.effective_from:
                raise PlanError(
                    f"{path}: effective_to: version {plan.version} of {plan.code!r} overlaps "
                    f"version {next_plan.version}, which starts {next_plan.effective_from}"
                )
            if next_plan.currency != plan.currency:
                raise PlanError(
                    f"{next_path}: currency: versions of {plan.code!r} must keep one currency "
                    f"({plan.currency})"
                )
            if next_plan.billing_interval != plan.billing_interval:
                raise PlanError(
                    f"{next_path}: billing_interval: versions of {plan.code!r} must keep one "
                    f"interval ({plan.billing_interval})"
                )
            end = end or next_plan.effective_from
        ends.append(end)
    return ends


def _merge_charges(base: list[dict], override: PlanOverride) -> list[dict]:
    by_id = {charge["id"]: index for index, charge in enumerate(base)}
    merged = [copy.deepcopy(charge) for charge in base]
    for change in override.charges:
        index = by_id.get(change["id"])
        if index is None:
            merged.append(copy.deepcopy(change))
            continue
        current = merged[index]
        if "model" in change and change["model"] != current.get("model"):
            keep = {
                "id",
                "meter",
                "description",
                "filter",
                "group_by",
                "aggregation",
                "discount_percent",
                "minimum_spend",
                "maximum_spend",
            }
            current = {key: value for key, value in current.items() if key in keep}
        current.update(copy.deepcopy(change))
        merged[index] = current
    removed = set(override.remove_charges)
    unknown = removed - set(by_id)
    if unknown:
        raise ValueError(f"remove_charges: unknown charge ids {sorted(unknown)}")
    return [charge for charge in merged if charge["id"] not in removed]


def _apply_override(
    raw_base: dict, override: PlanOverride, path: Path, reference: Reference
) -> PlanVersion:
    merged = copy.deepcopy(raw_base)
    if override.name is not None:
        merged["name"] = override.name
    if "commitment" in override.model_fields_set:
        merged["commitment"] = (
            None
            if override.commitment is None
            else override.commitment.model_dump(exclude_none=True)
        )
    try:
        merged["charges"] = _merge_charges(raw_base.get("charges", []), override)
    except ValueError as error:
        raise PlanError(f"{path}: {error}") from None
    where = f"(on {override.plan} v{raw_base.get('version')}) "
    charge_ids = [str(charge.get("id")) for charge in merged["charges"]]
    try:
        plan = PlanVersion.model_validate(merged)
    except ValidationError as error:
        raise PlanError(f"{path}: {where}{describe_validation_error(error, charge_ids)}") from None
    _check_reference(plan, path, reference, where=where)
    return plan


@dataclass(frozen=True)
class PlanProblem:
    """Why a plan file cannot be priced: the plan code it defines (when known), the account of
    an override, and the message (file, path inside it, reason)."""

    message: str
    path: Path
    plan_code: str | None = None
    account_id: str | None = None


class PlanErrors(PlanError):
    """Every problem of a plans directory at once, one line each."""

    def __init__(self, problems: list[PlanProblem]):
        self.problems = problems
        super().__init__("\n".join(problem.message for problem in problems))


@dataclass
class PlanValidation:
    """What validating a plans directory gives: the versions that can be priced (every version
    of a plan with no problem, and the valid overrides) and every problem found."""

    versions: list[CompiledVersion]
    problems: list[PlanProblem]

    @property
    def failed_plans(self) -> set[str]:
        return {p.plan_code for p in self.problems if p.plan_code and not p.account_id}


def _plan_code_of(raw: Any) -> str | None:
    code = raw.get("code") if isinstance(raw, dict) else None
    return code if isinstance(code, str) else None


def validate_plans(plans_dir: Path, reference: Reference) -> PlanValidation:
    """Every plan version and account override under plans_dir, validated. A plan with a bad
    version is left out whole (its history cannot be priced in part); a bad override leaves out
    that account's terms. Nothing stops at the first problem."""
    files = plan_files(plans_dir)
    if not files:
        raise PlanError(f"{plans_dir}: no plan files (*.yaml)")
    problems: list[PlanProblem] = []
    versions: dict[str, list[tuple[PlanVersion, Path]]] = defaultdict(list)
    raw_by_version: dict[tuple[str, int], dict] = {}
    for path in files:
        raw = None
        try:
            raw = _read_yaml(path)
            plan = _validate_plan(raw, path)
            _check_reference(plan, path, reference)
        except PlanError as error:
            code = _plan_code_of(raw) or f"?{path.name}"
            problems.append(PlanProblem(str(error), path, plan_code=code))
            continue
        versions[plan.code].append((plan, path))
        raw_by_version[(plan.code, plan.version)] = raw
    failed = {problem.plan_code for problem in problems}
    windowed: dict[str, list[tuple[PlanVersion, Path, date | None]]] = {}
    for code in sorted(versions):
        try:
            windowed.update(windowed_versions({code: versions[code]}))
        except PlanError as error:
            problems.append(PlanProblem(str(error), versions[code][0][1], plan_code=code))
            failed.add(code)
    compiled = [
        CompiledVersion(plan=plan, effective_to=end, base_code=code)
        for code, items in windowed.items()
        if code not in failed
        for plan, _, end in items
    ]
    compiled += _overrides(plans_dir, reference, compiled, raw_by_version, versions, problems)
    return PlanValidation(versions=compiled, problems=problems)


def _overrides(
    plans_dir: Path,
    reference: Reference,
    compiled: list[CompiledVersion],
    raw_by_version: dict[tuple[str, int], dict],
    versions: dict[str, list[tuple[PlanVersion, Path]]],
    problems: list[PlanProblem],
) -> list[CompiledVersion]:
    """Account overrides layered on the valid plans; a problem is the account's."""
    layered: list[CompiledVersion] = []
    windows_by_target: dict[tuple[str, str], list[tuple[date, date | None, Path]]] = defaultdict(
        list
    )
    for path in override_files(plans_dir):
        try:
            override = load_override_file(path)
        except PlanError as error:
            problems.append(PlanProblem(str(error), path))
            continue
        target = {"plan_code": override.plan, "account_id": override.account}
        try:
            layered += _layer(override, path, reference, compiled, raw_by_version, versions)
        except PlanError as error:
            problems.append(PlanProblem(str(error), path, **target))
            continue
        start = override.effective_from or date.min
        for other_start, other_end, other_path in windows_by_target[
            (override.account, override.plan)
        ]:
            if start < (other_end or date.max) and other_start < (
                override.effective_to or date.max
            ):
                message = (
                    f"{path}: overrides {override.plan!r} for {override.account!r} in a "
                    f"window that overlaps {other_path}"
                )
                problems.append(PlanProblem(message, path, **target))
        windows_by_target[(override.account, override.plan)].append(
            (start, override.effective_to, path)
        )
    failed_accounts = {(p.account_id, p.plan_code) for p in problems if p.account_id}
    return [v for v in layered if (v.account_id, v.base_code) not in failed_accounts]


def _layer(
    override: PlanOverride,
    path: Path,
    reference: Reference,
    compiled: list[CompiledVersion],
    raw_by_version: dict[tuple[str, int], dict],
    versions: dict[str, list[tuple[PlanVersion, Path]]],
) -> list[CompiledVersion]:
    """The versions an override makes of every version of its plan that its window meets."""
    if override.plan not in versions:
        raise PlanError(f"{path}: plan: unknown plan {override.plan!r}")
    if reference.accounts is not None and override.account not in reference.accounts:
        raise PlanError(f"{path}: account: unknown account {override.account!r}")
    start = override.effective_from or date.min
    layered = []
    for base in [item for item in compiled if item.base_code == override.plan]:
        window_start = max(base.plan.effective_from, start)
        window_end = _earliest(base.effective_to, override.effective_to)
        if window_end is not None and window_end <= window_start:
            continue
        plan = _apply_override(
            raw_by_version[(base.base_code, base.plan.version)], override, path, reference
        )
        plan = plan.model_copy(update={"effective_from": window_start})
        layered.append(
            CompiledVersion(
                plan=plan,
                effective_to=window_end,
                base_code=base.base_code,
                account_id=override.account,
            )
        )
    return layered


def load_plans(plans_dir: Path, reference: Reference) -> list[CompiledVersion]:
    """Every plan version (and account override) under plans_dir, validated, with its window;
    PlanErrors with every problem when there is any."""
    validation = validate_plans(plans_dir, reference)
    if validation.problems:
        raise PlanErrors(validation.problems)
    return validation.versions


def _earliest(first: date | None, second: date | None) -> date | None:
    candidates = [value for value in (first, second) if value is not None]
    return min(candidates) if candidates else None


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
