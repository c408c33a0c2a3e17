"""A run's events as Dagster's instance stored them: what `billing demo` and `billing
sync-report` say about a run, read from the event log rather than from the run's output."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

PAGE = 1000


def run_events(
    instance: dg.DagsterInstance, run_id: str, of_type: Iterable[dg.DagsterEventType]
) -> Iterator[dg.DagsterEvent]:
    """Every event of `of_type` in the run, oldest first, a page at a time."""
    types = set(of_type)
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=types, limit=PAGE)
        for record in page.records:
            yield record.event_log_entry.dagster_event
        if not page.has_more:
            return
        cursor = page.cursor
