"""Several dbt invocations in one process: `python -m tests.dbt_invocations PLAN`.

On Spark (dbt-spark's session method: a JVM and a Spark session inside the dbt process) the JVM,
the session and its metastore then start once for all of them instead of once per invocation
(10-20 s each here). tests/test_spark_parity.py bills its fixture this way on both engines;
Dagster's runs (one dbt process per invocation) are what the pipeline tests exercise.

PLAN is a JSON file: a list of {"args": [...], "env": {...}, "run_results": "path"}. Each
invocation runs in the dbt project with its own environment (the run vars: BILLING_RUN_AS_OF,
...; the previous invocation's are removed first), and its run_results.json is copied to
`run_results`. Stops at the first invocation that fails (exit 1). dbt is adjusted as `billing-dbt`
adjusts it (dagster_billing/lib/dbt_cli.py: the Spark profile's ANSI mode kept).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def _target_path(args: list[str]) -> Path:
    return Path(args[args.index("--target-path") + 1])


def main(argv: list[str]) -> int:
    from dagster_billing.lib.dbt_cli import adjust_dbt
    from dagster_billing.paths import DBT_PROJECT_DIR

    adjust_dbt("spark")
    from dbt.cli.main import dbtRunner

    os.chdir(DBT_PROJECT_DIR)
    previous: dict[str, str] = {}
    for invocation in json.loads(Path(argv[0]).read_text()):
        for name in previous:
            os.environ.pop(name, None)
        os.environ.update(invocation["env"])
        previous = invocation["env"]
        result = dbtRunner().invoke(invocation["args"])
        run_results = _target_path(invocation["args"]) / "run_results.json"
        if run_results.exists():
            shutil.copy(run_results, invocation["run_results"])
        if not result.success:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
