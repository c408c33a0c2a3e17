"""Settings of every DuckDB connection to the warehouse (apart from `resources.py` so that
DuckDB-only code, such as the bench's floor, does not import Dagster to get them)."""

from __future__ import annotations

import os


def duckdb_config() -> dict[str, str]:
    """Settings of every DuckDB connection to the warehouse, the same ones dbt's profile reads.

    memory_limit: BILLING_DUCKDB_MEMORY_LIMIT (default 40% of RAM, DuckDB's own default is 80%),
    so a 100M-event build spills to disk rather than crowd out the landing step and Dagster.
    """
    return {"memory_limit": os.environ.get("BILLING_DUCKDB_MEMORY_LIMIT") or "40%"}
