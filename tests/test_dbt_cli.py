"""`billing-dbt` (lib/dbt_cli.py): dbt's saved parse of one data directory serves another; plain
dbt parses everything again ("profile has changed": the DuckDB file's path is in the profile).
(A full parse gives the same manifest.json for any data directory: checked by hand when this
was written, docs/decisions.md 87.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster_billing.paths import DBT_PROJECT_DIR

BIN = Path(sys.executable).parent
STATE = "partial_parse.msgpack"
NO_STATE = "saved manifest not found. Starting full parse."


def _parse(executable: str, data_dir: Path, target: Path) -> list[str]:
    """`<executable> parse` of the project for `data_dir` into `target`: why dbt could not reuse
    the saved parse it found there (empty when it reused it)."""
    completed = subprocess.run(
        [BIN / executable, "parse", "--log-format", "json", "--target-path", target],
        cwd=DBT_PROJECT_DIR,
        env={
            **os.environ,
            "BILLING_DATA_DIR": str(data_dir),
            "BILLING_SEEDS_DIR": "../seeds",
            "BILLING_ENGINE": "duckdb",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    events = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    return [e["data"]["reason"] for e in events if e["info"]["name"] == "UnableToPartialParse"]


def test_a_saved_parse_serves_another_data_directory(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _parse("billing-dbt", tmp_path / "a", first) == [NO_STATE]
    second.mkdir()
    shutil.copy(first / STATE, second / STATE)

    assert _parse("billing-dbt", tmp_path / "b", second) == []
