"""`billing doctor`: is anything accepted stranded? Files not landed, events the API acknowledged
that are not in the raw layer, runs whose process is gone (which would hold the `duckdb` pool).

It reads the landing ledger and the API's state (SQLite) and the raw layer (Parquet); it
changes nothing unless asked to fail dead runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster_billing.defs.ingest.acknowledged import acknowledged_not_landed
from dagster_billing.defs.ingest.ledger import landing_status
from dagster_billing.defs.ingest.raw_store import raw_store

# Files not landed this long after they could have been are a problem: the sensor, `billing
# watch` or a scheduled run should have landed them by then.
STALE_SECONDS = 300
LISTED = 10


@dataclass
class Diagnosis:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"PROBLEM {problem}" for problem in self.problems]
        lines += [f"note    {note}" for note in self.notes]
        if not self.problems:
            lines.insert(0, "OK      nothing accepted is stranded")
        return "\n".join(lines)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def diagnose(
    data_dir: Path, *, instance=None, fail_dead_runs: bool = False, now: float | None = None
) -> Diagnosis:
    root = Path(data_dir).resolve()
    now = time.time() if now is None else now
    diagnosis = Diagnosis()
    status = landing_status(root, now=now)
    stale = [
        name
        for name in status.ready
        if now - (root / "landing" / name).stat().st_mtime >= STALE_SECONDS
    ]
    if stale:
        diagnosis.problems.append(
            f"{len(stale)} landing files not landed for over {STALE_SECONDS} s: {_listed(stale)} "
            "(is the landing sensor or `billing watch` running? did its runs fail?)"
        )
    if len(status.ready) > len(stale):
        diagnosis.notes.append(f"{len(status.ready) - len(stale)} new landing files to land")
    if status.settling:
        diagnosis.notes.append(f"{len(status.settling)} files still being written")
    if status.missing:
        diagnosis.problems.append(
            f"{len(status.missing)} files the API acknowledged are gone from disk before "
            f"landing: {_listed(status.missing)}"
        )
    for problem in status.unreadable.values():
        diagnosis.problems.append(f"{problem} (touch the file to retry)")
    for name, left in status.unterminated.items():
        diagnosis.notes.append(
            f"{name}: its last {left} bytes are not landed: a line without a newline at the end"
        )
    _check_raw_layer(root, diagnosis)
    if instance is not None:
        _check_runs(instance, diagnosis, fail_dead_runs)
    return diagnosis


def _check_raw_layer(root: Path, diagnosis: Diagnosis) -> None:
    """The API's acknowledgements against the raw layer (Parquet: read while runs write)."""
    store = raw_store(root)
    if store.ledger().is_empty():
        diagnosis.notes.append("nothing landed yet")
        return
    with store.connect() as connection:
        report = acknowledged_not_landed(connection, root)
    for item in report.not_landed:
        diagnosis.problems.append(
            f"{item['file']}: {item['events_not_landed']} of {item['events_acknowledged']} events "
            f"the API acknowledged are not landed ({item['why']}); ids: {', '.join(item['ids'])}"
        )
    diagnosis.notes.append(
        f"{report.events_acknowledged} events the API acknowledged in {report.files_checked} "
        f"files checked against the raw layer; {report.files_awaiting_landing} newer files wait "
        "for the next landing"
    )


def _check_runs(instance, diagnosis: Diagnosis, fail_them: bool) -> None:
    import dagster as dg

    from dagster_billing.run_launcher import fail_dead_runs, run_worker_health

    if fail_them:
        for run_id in fail_dead_runs(instance):
            diagnosis.notes.append(f"run {run_id}: its process was gone; marked failed")
        return
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        health = run_worker_health(instance, record.dagster_run)
        if health.status.value not in ("RUNNING", "SUCCESS"):
            diagnosis.problems.append(
                f"run {record.dagster_run.run_id} ({record.dagster_run.job_name}) is "
                f"{record.dagster_run.status.value} but {health.msg}: it holds its pool slots "
                "until run monitoring fails it (`billing doctor --fail-dead-runs` does it now)"
            )
