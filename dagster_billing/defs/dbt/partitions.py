"""The two calendars of the pipeline: usage by UTC event day, invoices by billing period."""

import dagster as dg

# The current (still open) day is a partition too: continuous rating recomputes it all day.
USAGE_DAY_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)

# Billing periods are UTC calendar months; a partition is finalized once its grace period ends.
BILLING_PERIOD_PARTITIONS = dg.MonthlyPartitionsDefinition(start_date="2026-01-01")
