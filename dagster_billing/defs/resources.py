from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field


class BillingWarehouse(dg.ConfigurableResource):
    """Where the pipeline keeps its data: landing files, the DuckDB warehouse and exports.

    The dbt profile reads the same BILLING_DATA_DIR (dbt_project/profiles.yml), so Python writers
    and dbt always open the same DuckDB file. DuckDB allows one writer: every asset that writes it
    runs in the `duckdb` concurrency pool (limit 1).
    """

    data_dir: str = Field(description="Root of landing/, exports/ and warehouse.duckdb.")

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def duckdb_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.root.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(str(self.duckdb_path), read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()


DUCKDB_POOL = "duckdb"
