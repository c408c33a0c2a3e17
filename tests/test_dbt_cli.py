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


def test_invocation_folders_beyond_the_newest_are_deleted_once_idle(tmp_path: Path):
    """dbt_invocation_target prunes after each invocation: folders named like invocations
    beyond the newest `keep` go, unless dbt wrote to one within the idle time (still running);
    the shared parse state and anything not named like an invocation stay."""
    import time

    from dagster_billing.defs.resources import prune_invocation_targets

    now = time.time()
    hour = 3600

    def folder(name: str, written: float) -> Path:
        path = tmp_path / name
        (path / "run").mkdir(parents=True)
        (path / "dbt.log").write_text("{}\n")
        for entry in (path / "dbt.log", path):
            os.utime(entry, (written, written))
        return path

    old = [folder(f"billing_dbt_models-{i:07x}", now - (10 + i) * hour) for i in range(4)]
    recent = [folder(f"rate_landed_usage-{i:07x}", now - 60 * (i + 1)) for i in range(2)]
    # Its folder is older than all of them, but dbt wrote its log a minute ago: still running.
    running = folder("billing_dbt_models-abcdef0", now - 20 * hour)
    os.utime(running / "dbt.log", (now - 90, now - 90))
    (tmp_path / "partial_parse").mkdir()
    (tmp_path / "partial_parse" / "0123456789abcdef.msgpack").write_bytes(b"state")
    (tmp_path / "compiled").mkdir()

    deleted = prune_invocation_targets(tmp_path, keep=2)

    # Beyond the newest two: the running one (kept: written within the hour) and the old ones.
    assert sorted(deleted) == sorted(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in recent), running.name, "partial_parse", "compiled"]
    )
    assert prune_invocation_targets(tmp_path, keep=0) == []
