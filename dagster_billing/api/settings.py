"""Where the API keeps its files and how much it accepts per request."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from dagster_billing.paths import SEEDS_DIR

API_LANDING_SUBDIR = "api"


@dataclass(frozen=True)
class ApiSettings:
    data_dir: Path
    seeds_dir: Path = SEEDS_DIR
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 1000
    max_csv_bytes: int = 16 * 1024 * 1024
    max_csv_rows: int = 100_000
    # Requests waiting for the landing writer; beyond this the API answers 503 + Retry-After.
    max_queued_requests: int = 256
    # Landing writer threads per process (each validates, claims and writes its own groups).
    writer_threads: int = 2

    @classmethod
    def from_env(cls) -> ApiSettings:
        data_dir = os.environ.get("BILLING_DATA_DIR")
        if not data_dir:
            raise RuntimeError("BILLING_DATA_DIR is not set: the API needs a data directory")
        overrides = {
            field: int(os.environ[name])
            for field, name in (
                ("max_body_bytes", "BILLING_API_MAX_BODY_BYTES"),
                ("max_batch", "BILLING_API_MAX_BATCH"),
                ("max_csv_bytes", "BILLING_API_MAX_CSV_BYTES"),
                ("max_csv_rows", "BILLING_API_MAX_CSV_ROWS"),
                ("writer_threads", "BILLING_API_WRITER_THREADS"),
            )
            if os.environ.get(name)
        }
        seeds = os.environ.get("BILLING_API_SEEDS_DIR")
        if seeds:
            overrides["seeds_dir"] = Path(seeds)
        return cls(data_dir=Path(data_dir).resolve(), **overrides)

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def api_landing_dir(self) -> Path:
        return self.landing_dir / API_LANDING_SUBDIR

    @property
    def state_path(self) -> Path:
        return api_state_path(self.data_dir)

    def known_meters(self) -> frozenset[str]:
        with (self.seeds_dir / "meters.csv").open(newline="") as handle:
            return frozenset(row["meter_code"] for row in csv.DictReader(handle))

    def known_accounts(self) -> frozenset[str]:
        with (self.seeds_dir / "accounts.csv").open(newline="") as handle:
            return frozenset(row["account_id"] for row in csv.DictReader(handle))


def api_state_path(data_dir: Path) -> Path:
    return Path(data_dir) / "api" / "state.sqlite3"
