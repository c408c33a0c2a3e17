"""The dbt command lines Dagster builds: pure functions, checked without running dbt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dagster_billing.lib.dbt_args import (
    dbt_build_args,
    dbt_timestamp,
    finalization_vars,
    parse_dbt_timestamp,
    run_environment,
    run_vars,
    usage_window_vars,
)


def test_timestamps_are_utc_without_offset():
    # isoformat() would give '+00:00', which dbt rejects for --event-time-* and our vars.
    assert dbt_timestamp(datetime(2026, 1, 5, tzinfo=UTC)) == "2026-01-05T00:00:00"
    paris = timezone(timedelta(hours=1))
    assert dbt_timestamp(datetime(2026, 1, 5, 1, 30, tzinfo=paris)) == "2026-01-05T00:30:00"
    assert dbt_timestamp(datetime(2026, 1, 5, 12, 0, 0, 999)) == "2026-01-05T12:00:00"


def test_parse_is_the_inverse_and_strict():
    assert parse_dbt_timestamp("2026-02-04T01:00:00") == datetime(2026, 2, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_dbt_timestamp("2026-02-04T01:00:00+00:00")


def test_usage_window_is_half_open_and_never_empty():
    start, end = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    assert usage_window_vars(start, end) == {
        "usage_window_start": "2026-01-05T00:00:00",
        "usage_window_end": "2026-01-06T00:00:00",
    }
    with pytest.raises(ValueError, match="empty usage window"):
        usage_window_vars(end, start)


def test_finalization_uses_the_partition_end():
    assert finalization_vars(datetime(2026, 2, 1, tzinfo=UTC)) == {
        "finalize_periods_before": "2026-02-01T00:00:00"
    }


def test_build_args_with_vars_and_full_refresh():
    as_of = datetime(2026, 1, 31, 23, tzinfo=UTC)
    assert dbt_build_args() == ["build", "--exclude-resource-type", "unit_test"]
    args = dbt_build_args(
        full_refresh=True,
        dbt_vars=run_vars(as_of=as_of)
        | usage_window_vars(as_of.replace(hour=0), as_of.replace(hour=0) + timedelta(days=1)),
    )
    assert args[:5] == ["build", "--exclude-resource-type", "unit_test", "--full-refresh", "--vars"]
    assert json.loads(args[5]) == {
        "as_of": "2026-01-31T23:00:00",
        "usage_window_end": "2026-02-01T00:00:00",
        "usage_window_start": "2026-01-31T00:00:00",
    }
    # Sorted keys: the same run always produces the same command line.
    assert args[5] == json.dumps(json.loads(args[5]), sort_keys=True)


def test_run_vars_travel_as_environment_variables():
    # What the run_var macro reads when --vars does not set the name.
    as_of = datetime(2026, 1, 31, 23, tzinfo=UTC)
    assert run_environment(run_vars(as_of=as_of) | finalization_vars(as_of)) == {
        "BILLING_RUN_AS_OF": "2026-01-31T23:00:00",
        "BILLING_RUN_FINALIZE_PERIODS_BEFORE": "2026-01-31T23:00:00",
    }
