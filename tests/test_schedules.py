"""Which partitions the schedules ask for."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from dagster_billing.defs.invoicing.schedules import continuous_rating, period_close


def _context(moment: datetime) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(scheduled_execution_time=moment)


def test_continuous_rating_restates_today():
    request = continuous_rating(_context(datetime(2026, 3, 5, 10, 15, tzinfo=UTC)))
    assert request.partition_key == "2026-03-05"


def test_period_close_targets_the_last_complete_month_once_a_day():
    request = period_close(_context(datetime(2026, 3, 5, 1, 30, tzinfo=UTC)))
    assert (request.partition_key, request.run_key) == ("2026-02-01", "2026-02-01@2026-03-05")
    january = period_close(_context(datetime(2026, 1, 3, 1, 30, tzinfo=UTC)))
    assert isinstance(january, dg.SkipReason)
