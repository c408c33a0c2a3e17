"""`billing sync-report`: what a billing_sync run did, per push asset, read from Dagster's event
log: the model's rows, how many were sent, synced and failed, and the two checks
(`all_rows_synced`, `matches_warehouse`) with what the destination had that differed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dagster_billing.lib.run_events import run_events

ROWS_SYNCED_CHECK = "all_rows_synced"
RECONCILE_CHECK = "matches_warehouse"
SHOWN_IDS = 5  # ids listed per kind of difference
# matches_warehouse's metadata: the kinds of `differences` and the entries counting each.
DIFFERENCE_COUNTS = {
    "missing": "missing_in_destination",
    "unexpected": "unexpected_in_destination",
    "mismatched": "mismatched",
    "duplicated": "duplicated",
}


@dataclass
class PushReport:
    asset: str
    counts: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    differences: dict[str, list] = field(default_factory=dict)  # the ids listed, per kind
    difference_counts: dict[str, int] = field(default_factory=dict)  # all of them, per kind


def latest_sync_run(instance: dg.DagsterInstance, job: str = "billing_sync") -> dg.DagsterRun:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
    if not runs:
        raise LookupError(f"no {job} run in this Dagster instance (DAGSTER_HOME)")
    return runs[0]


def push_reports(instance: dg.DagsterInstance, run_id: str) -> list[PushReport]:
    """One report per push asset the run materialized or checked, by asset key."""
    pushes: dict[str, PushReport] = {}
    for event in run_events(
        instance,
        run_id,
        (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION),
    ):
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = data.materialization.metadata
            if "model_rows" not in metadata:  # not a push (payments/stripe_invoice_status)
                continue
            report = pushes.setdefault(event.asset_key.to_user_string(), PushReport(""))
            report.counts = {
                name: metadata[name].value
                for name in ("model_rows", "sent", "synced", "failed")
                if name in metadata
            }
        elif data.check_name in (ROWS_SYNCED_CHECK, RECONCILE_CHECK):
            report = pushes.setdefault(data.asset_key.to_user_string(), PushReport(""))
            report.checks[data.check_name] = data.passed
            if data.check_name == RECONCILE_CHECK and "differences" in data.metadata:
                report.differences = data.metadata["differences"].value
                report.difference_counts = {
                    kind: data.metadata[count].value
                    for kind, count in DIFFERENCE_COUNTS.items()
                    if count in data.metadata
                }
    for asset, report in pushes.items():
        report.asset = asset
    return [pushes[asset] for asset in sorted(pushes)]


def render_sync_report(run_id: str, status: str, reports: list[PushReport]) -> str:
    lines = [
        f"billing_sync run {run_id[:8]}: {status}",
        f"{'push':<30} {'rows':>6} {'sent':>6} {'synced':>6} {'failed':>6}  "
        f"{'all rows synced':<16} matches warehouse",
    ]
    for report in reports:
        counts = [report.counts.get(name) for name in ("model_rows", "sent", "synced", "failed")]
        lines.append(
            f"{report.asset:<30} "
            + " ".join(f"{'-' if n is None else n:>6}" for n in counts)
            + f"  {_status(report.checks.get(ROWS_SYNCED_CHECK)):<16} "
            + _status(report.checks.get(RECONCILE_CHECK))
        )
    failed = [r for r in reports if r.checks.get(RECONCILE_CHECK) is False]
    if failed:
        lines.append("Where a destination differs from the warehouse (matches_warehouse):")
        for report in failed:
            lines += [f"  {report.asset}: {line}" for line in _difference_lines(report)]
        lines.append(
            "A record edited in a destination is not re-sent (its payload has not changed); a "
            "destination restored or replaced (or the local servers started --fresh) gets everything "
            "again with config resend_all: true (docs/reverse-etl.md)."
        )
    return "\n".join(lines)


def _status(passed: bool | None) -> str:
    return "-" if passed is None else "passed" if passed else "FAILED"


def _difference_lines(report: PushReport) -> list[str]:
    lines = []
    for kind, items in report.differences.items():
        if not items:
            continue
        shown = [
            f"{item['document_id']} ({', '.join(_what_differs(item))})"
            if isinstance(item, dict)
            else str(item)
            for item in items[:SHOWN_IDS]
        ]
        total = report.difference_counts.get(kind, len(items))
        more = f" and {total - len(shown)} more" if total > len(shown) else ""
        lines.append(f"{kind} {', '.join(shown)}{more}")
    return lines


def _what_differs(mismatch: dict[str, Any]) -> list[str]:
    """Field names of a record, or the figures (total, line_count) of a document."""
    if "fields" in mismatch:
        return [difference["field"] for difference in mismatch["fields"]]
    return [name for name in mismatch if name != "document_id"]
