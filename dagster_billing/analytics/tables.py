"""What the published snapshots hold: the analyst-facing marts, under their warehouse names.

Keep it to tables whose size follows accounts x meters x days, not events: per-event outcomes
are published as the quarantined rows (billing.fct_usage_quarantine) and counts per landed file
(billing.fct_usage_outcome_counts). A table in PARTITION_COLUMNS is published a partition at a
time: a snapshot starts as a copy of the previous one and rewrites only the partitions whose rows
changed (publish.py); every other table is copied whole each time.
Every column of these tables is described in the dbt YAML (tests/test_analytics.py). The ledger
is not published: it exists only after the first close, and final invoices and credit notes are
in fct_invoice_lines and fct_credit_note_lines as booked.
"""

from __future__ import annotations

PUBLISHED_TABLES: tuple[tuple[str, str], ...] = (
    ("billing", "fct_rated_usage"),
    ("billing", "fct_usage_daily"),
    ("billing", "fct_usage_daily_by_dimension"),
    ("billing", "fct_usage_hourly"),
    ("billing", "fct_usage_hourly_by_dimension"),
    ("billing", "fct_usage_alerts"),
    ("billing", "fct_usage_quotas"),
    ("billing", "fct_usage_outcome_counts"),
    ("billing", "fct_usage_quarantine"),
    ("billing", "fct_invoices"),
    ("billing", "fct_invoice_lines"),
    ("billing", "fct_invoice_line_tiers"),
    ("billing", "fct_credit_notes"),
    ("billing", "fct_credit_note_lines"),
    ("billing", "fct_credit_balances"),
    ("billing", "fct_credit_movements"),
    ("revenue", "fct_revenue_by_period"),
    ("revenue", "fct_revenue_by_meter"),
    ("revenue", "fct_mrr"),
)

# The tables that grow with history, and the column whose values split them into the parts a run
# rewrites: a usage day, a landed file.
PARTITION_COLUMNS: dict[tuple[str, str], str] = {
    ("billing", "fct_usage_daily"): "usage_day",
    ("billing", "fct_usage_daily_by_dimension"): "usage_day",
    ("billing", "fct_usage_hourly"): "usage_day",
    ("billing", "fct_usage_hourly_by_dimension"): "usage_day",
    ("billing", "fct_usage_quarantine"): "file_seq",
}

# Written by the publisher itself (not dbt models): what the snapshot is and what it holds.
META_SCHEMA = "meta"
