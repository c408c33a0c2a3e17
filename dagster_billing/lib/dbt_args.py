"""The arguments Dagster gives `dbt build`: small pure functions, unit-tested in tests/test_dbt_args.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

# The only timestamp format the billing vars (and dbt's --event-time-* flags) accept: UTC, no offset.
DBT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def dbt_timestamp(value: datetime) -> str:
    """`2026-01-05T00:00:00` for any aware datetime (converted to UTC) or naive UTC datetime."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(DBT_TIME_FORMAT)


def parse_dbt_timestamp(text: str) -> datetime:
    """The inverse of dbt_timestamp, as an aware UTC datetime; rejects any other format."""
    return datetime.strptime(text, DBT_TIME_FORMAT).replace(tzinfo=UTC)


def run_vars(*, as_of: datetime) -> dict[str, str]:
    """Vars every invocation of one pipeline run shares: its clock."""
    return {"as_of": dbt_timestamp(as_of)}


def usage_window_vars(start: datetime, end: datetime) -> dict[str, str]:
    """The half-open event-time window [start, end) daily-partitioned usage models recompute."""
    if end <= start:
        raise ValueError(f"empty usage window: {start} .. {end}")
    return {"usage_window_start": dbt_timestamp(start), "usage_window_end": dbt_timestamp(end)}


def finalization_vars(window_end: datetime) -> dict[str, str]:
    """Finalize every closed billing period that starts before the partition window's end."""
    return {"finalize_periods_before": dbt_timestamp(window_end)}


RUN_ENV_PREFIX = "BILLING_RUN_"


def run_environment(dbt_vars: Mapping[str, str]) -> dict[str, str]:
    """The run vars as the environment variables the dbt macro run_var reads while executing
    (`as_of` -> BILLING_RUN_AS_OF). Passed this way rather than as --vars, whose every change
    makes dbt re-parse the whole project (see macros/incremental.sql)."""
    return {f"{RUN_ENV_PREFIX}{name.upper()}": value for name, value in dbt_vars.items()}


def dbt_build_args(
    *, full_refresh: bool = False, dbt_vars: Mapping[str, str] | None = None
) -> list[str]:
    """Arguments of the `dbt build` that Dagster runs for the selected assets. dbt's unit tests
    (fixed inputs, no warehouse data) are left out of production runs, as dbt advises; `make
    test` runs them (tests/test_dbt_unit_tests.py)."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if dbt_vars:
        args += ["--vars", json.dumps(dict(sorted(dbt_vars.items())))]
    return args
