"""`billing demo` (what `make demo` runs): sample events, the daily pipeline and the period close
through Dagster, then the summary. The terminal gets one line per stage with its elapsed time;
the full Dagster and dbt output of every stage goes to a log file.

The jobs run as `dagster job execute`, as anyone would run them, against DAGSTER_HOME: the demo's
runs are then in the Dagster UI (`make dev`) with every event, check and dbt log line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster_billing.paths import REPO_ROOT, SEEDS_DIR

DEMO_TAG = "billing/demo"
# Days of sample usage from the first day: January and February 2026 by default.
SAMPLE_DAYS = 59
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class JobStage:
    """One job run over a partition range (a single-run backfill: one dbt invocation per asset
    set), so the UI shows every partition the run computed as materialized."""

    job: str
    first_partition: str
    last_partition: str
    label: str


@dataclass(frozen=True)
class RunReport:
    run_id: str
    status: str
    assets: int
    checks_passed: int
    checks_failed: int

    def describe(self) -> str:
        failed = f", {self.checks_failed} FAILED" if self.checks_failed else ""
        return (
            f"{self.assets} assets, {self.checks_passed} checks passed{failed} "
            f"(run {self.run_id[:8]})"
        )


class DemoFailed(Exception):
    pass


def demo_stages(first_day: date, as_of: str, close_period: str) -> list[JobStage]:
    """The daily pipeline over the days from the data's first to the demo clock's, then the close
    of the periods from the first one to `close_period`."""
    day = as_of[:10]
    first_period = first_day.replace(day=1).isoformat()
    return [
        JobStage(
            "billing_pipeline",
            first_day.isoformat(),
            day,
            f"days {first_day.isoformat()}..{day}: land, rate, draft, export",
        ),
        JobStage(
            "close_billing_period",
            first_period,
            close_period,
            f"periods {first_period[:7]}..{close_period[:7]}: finalize, PDFs",
        ),
    ]


def run_demo(
    data_dir: Path,
    dagster_home: Path,
    *,
    events: int,
    first_day: date,
    as_of: str,
    close_period: str,
    echo: Callable[[str], None],
) -> None:
    """Generate sample events into `data_dir`/landing and run the stages, one line each; raise
    DemoFailed, with the end of the log, when a run fails or a check does not pass."""
    from dagster_billing.datagen import generate_events

    log_path = data_dir / "logs" / "demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    _ensure_instance(dagster_home)
    echo(
        f"Demo: {events:,} sample events, clock {as_of} (UTC). "
        f"Full Dagster and dbt logs: {_shown(log_path)}"
    )
    started = time.monotonic()

    summary = generate_events(
        data_dir / "landing",
        events=events,
        seed=7,
        start=first_day,
        days=SAMPLE_DAYS,
        accounts_csv=SEEDS_DIR / "accounts.csv",
        meters_csv=SEEDS_DIR / "meters.csv",
    )
    echo(
        _progress(
            started,
            "sample data",
            f"{summary.total_rows:,} events in {len(summary.files)} files "
            f"({_shown(data_dir / 'landing')})",
        )
    )

    token = uuid.uuid4().hex
    for stage in demo_stages(first_day, as_of, close_period):
        report = _execute(stage, as_of, token, data_dir, dagster_home, log_path)
        echo(_progress(started, stage.job, f"{stage.label}; {report.describe()}"))
        if report.status != "SUCCESS" or report.checks_failed:
            raise DemoFailed(_failure(stage.job, report, log_path))


def _execute(
    stage: JobStage, as_of: str, token: str, data_dir: Path, dagster_home: Path, log_path: Path
) -> RunReport:
    tags = {
        "dagster/asset_partition_range_start": stage.first_partition,
        "dagster/asset_partition_range_end": stage.last_partition,
        "billing/as_of": as_of,
        DEMO_TAG: token,
    }
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("job", "execute", "-m", "dagster_billing.definitions", "-j", stage.job),
        *("--tags", json.dumps(tags)),
    ]
    environment = os.environ | {
        "BILLING_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(dagster_home),
        # One "planned" event per asset for the run's partition range, not one per asset and
        # day (thousands of SQLite writes before the first step). The cost, in Dagster's words:
        # the partitions of a run that fails show as missing, not failed; the demo says so itself.
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    }
    with log_path.open("a") as log:
        log.write(f"\n=== {stage.job}: {' '.join(command)}\n")
        log.flush()
        subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    return _run_report(dagster_home, stage.job, token, log_path)


def _run_report(dagster_home: Path, job: str, token: str, log_path: Path) -> RunReport:
    """What the run did, from the Dagster instance's event log (not from parsing its output)."""
    import dagster as dg

    from dagster_billing.lib.run_events import run_events

    with _instance(dagster_home) as instance:
        runs = instance.get_runs(
            filters=dg.RunsFilter(job_name=job, tags={DEMO_TAG: token}), limit=1
        )
        if not runs:
            raise DemoFailed(
                f"{job} did not start; the end of {_shown(log_path)}:\n{_tail(log_path)}"
            )
        run = runs[0]
        assets: set = set()
        passed = failed = 0
        for event in run_events(
            instance,
            run.run_id,
            (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION),
        ):
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                assets.add(event.asset_key)
            elif event.event_specific_data.passed:
                passed += 1
            else:
                failed += 1
    return RunReport(run.run_id, run.status.value, len(assets), passed, failed)


def _failure(job: str, report: RunReport, log_path: Path) -> str:
    what = "failed" if report.status != "SUCCESS" else "finished with failed checks"
    return (
        f"{job} {what} (run {report.run_id}: open it in the Dagster UI, `make dev`). "
        f"The end of {_shown(log_path)}:\n{_tail(log_path)}"
    )


def _ensure_instance(dagster_home: Path) -> None:
    """DAGSTER_HOME with the repository's dagster.yaml (one writer in the `duckdb` pool)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    if not settings.exists():
        shutil.copy(REPO_ROOT / "dagster.yaml", settings)


def _instance(dagster_home: Path):
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        return dg.DagsterInstance.get()
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous


def _progress(started: float, stage: str, detail: str) -> str:
    return f"[{time.monotonic() - started:6.1f}s] {stage:<21} {detail}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"  {line[:300]}" for line in lines)
