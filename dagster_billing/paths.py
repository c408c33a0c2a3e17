"""Locations inside the repository (reference data and the dbt project travel with the code)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# The last full parse (`make manifest`; dagster-dbt's target folder).
DBT_MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
PLANS_DIR = REPO_ROOT / "plans"
SEEDS_DIR = REPO_ROOT / "seeds"
PLAN_SCHEMA_PATH = REPO_ROOT / "docs" / "plan.schema.json"
