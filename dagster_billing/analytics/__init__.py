"""The read side: immutable snapshots of the analyst-facing marts, published after every run.

Analysts, the ingestion API's read endpoints and the customer portal read these, never the live
warehouse (which the pipeline writes, and which a reader would lock). One reader API:

    from dagster_billing.analytics import open_snapshot, snapshot_meta
    with open_snapshot(data_dir) as connection:          # read-only DuckDB connection
        connection.sql("select * from billing.fct_invoices").pl()

`current_snapshot_path(data_dir)` names the current file, `list_snapshots(data_dir)` the kept
ones (BILLING_ANALYTICS_KEEP, default 10), `open_snapshot(data_dir, seq=N)` an older one; all
raise NoSnapshotYet before the first publish. Publishing: publish.py (asset analytics/snapshot,
and the fast path's last op). docs/analytics.md is the analysts' page.
"""

from dagster_billing.analytics.reader import (
    NoSnapshotYet,
    SnapshotFile,
    analytics_dir,
    current_snapshot_path,
    list_snapshots,
    open_snapshot,
    published_tables,
    snapshot_meta,
    snapshot_path,
)

__all__ = [
    "NoSnapshotYet",
    "SnapshotFile",
    "analytics_dir",
    "current_snapshot_path",
    "list_snapshots",
    "open_snapshot",
    "published_tables",
    "snapshot_meta",
    "snapshot_path",
]
