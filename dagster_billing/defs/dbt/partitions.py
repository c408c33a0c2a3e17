"""The two calendars of the pipeline: usage by UTC event day, invoices by billing period.

Both start at the data's first day, so the UI lists no partitions before anything could be
billed: BILLING_FIRST_USAGE_DAY (YYYY-MM-DD) when set, else the earliest `starts_on` in
seeds/subscriptions.csv (no invoice exists before a subscription starts; decision 19). They are
part of the shape of the definitions, so they are read when the code location loads; restart
`make dev` after changing either.
"""

import csv
import os
from datetime import date

import dagster as dg

from dagster_billing.paths import SEEDS_DIR

# When the subscriptions seed is empty (a fresh project): the demo data's first day.
DEFAULT_FIRST_USAGE_DAY = "2026-01-01"


def first_usage_day(seeds_dir=SEEDS_DIR) -> date:
    configured = os.environ.get("BILLING_FIRST_USAGE_DAY")
    if configured:
        return date.fromisoformat(configured)
    with (seeds_dir / "subscriptions.csv").open(newline="") as handle:
        starts = [row["starts_on"] for row in csv.DictReader(handle) if row.get("starts_on")]
    return date.fromisoformat(min(starts, default=DEFAULT_FIRST_USAGE_DAY))


_FIRST_DAY = first_usage_day()

# The current (still open) day is a partition too: continuous rating recomputes it all day.
USAGE_DAY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=_FIRST_DAY.isoformat(), end_offset=1)

# Billing periods are UTC calendar months; a partition is finalized once its grace period ends.
BILLING_PERIOD_PARTITIONS = dg.MonthlyPartitionsDefinition(
    start_date=_FIRST_DAY.replace(day=1).isoformat()
)
