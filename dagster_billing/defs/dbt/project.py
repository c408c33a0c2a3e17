from __future__ import annotations

import sys
from pathlib import Path

from dagster_dbt import DbtProject

from dagster_billing.paths import DBT_PROJECT_DIR

billing_project = DbtProject(project_dir=DBT_PROJECT_DIR)
# Builds the manifest under `dagster dev` only; tests, CI and `make demo` run `dbt parse` first.
billing_project.prepare_if_dev()

# The dbt installed beside this interpreter, so a venv works without being on PATH, through
# `billing-dbt` (dagster_billing/lib/dbt_cli.py): dbt itself, keeping the Spark profile's ANSI
# mode when the target is Spark and reusing a saved parse whatever the DuckDB file's path.
_venv_dbt = Path(sys.executable).with_name("billing-dbt")
DBT_EXECUTABLE = str(_venv_dbt) if _venv_dbt.exists() else "billing-dbt"
