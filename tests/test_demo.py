"""`billing demo` (what `make demo` runs), as a newcomer sees it: a few lines on the terminal, the
full Dagster and dbt output in a log file, invoices on disk."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_billing.cli import main
from dagster_billing.paths import REPO_ROOT

MAX_TERMINAL_LINES = 40


@pytest.mark.slow
def test_demo_prints_one_line_per_stage_and_logs_the_rest(tmp_path):
    data_dir, home = tmp_path / "data", tmp_path / "dagster_home"
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "billing"),
            # From February 25 (the default starts in January): nine daily partitions to March
            # 5, whose per-partition bookkeeping dominates a run of 3,000 events; February still
            # closes (66 CPU-s for the command against 83 from February 1).
            *("demo", "--events", "3000", "--first-day", "2026-02-25"),
            *("--data-dir", str(data_dir), "--dagster-home", str(home)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Nothing on stderr: no warnings a user cannot act on.
    assert completed.stderr == ""
    lines = completed.stdout.splitlines()
    assert len(lines) <= MAX_TERMINAL_LINES, completed.stdout
    stages = [match for line in lines if (match := re.match(r"\[\s*[\d.]+s\] (\S+)", line))]
    assert [match[1] for match in stages] == [
        "sample",
        "billing_pipeline",
        "close_billing_period",
    ], lines
    stages = [match.string for match in stages]
    assert all("checks passed" in line and "FAILED" not in line for line in stages[1:])
    assert "accepted" in completed.stdout and "Invoices:" in completed.stdout

    log = (data_dir / "logs" / "demo.log").read_text()
    assert str(Path("logs") / "demo.log") in lines[0]
    assert log.count("RUN_SUCCESS") == 2
    assert "Completed successfully" in log
    assert len(log.splitlines()) > 10 * len(lines)

    assert (data_dir / "exports" / "invoices" / "2026-02" / "invoices.csv").exists()
    assert list((data_dir / "exports" / "pdf" / "2026-02").glob("*.pdf"))
    # The runs are in the instance the UI reads.
    assert (home / "dagster.yaml").exists()


def test_demo_refuses_to_overwrite_data_without_fresh(tmp_path):
    (tmp_path / "data" / "landing").mkdir(parents=True)
    result = CliRunner().invoke(
        main,
        ["demo", "--data-dir", str(tmp_path / "data"), "--dagster-home", str(tmp_path / "home")],
    )
    assert result.exit_code != 0
    assert "--fresh" in result.output
    assert (tmp_path / "data" / "landing").exists()
