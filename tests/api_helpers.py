"""Shared by the API tests: keys through the CLI, landing files as the landing asset sees them."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from dagster_billing.cli import main

TS = "2026-01-05T12:00:00Z"


def create_key(data_dir: Path, tenant: str, *accounts: str) -> str:
    args = ["api-keys", "create", "--tenant", tenant, "--data-dir", str(data_dir)]
    for account in accounts:
        args += ["--account", account]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def event(unique_id: str, account: str = "acct_meridian", **overrides) -> dict:
    return {
        "uniqueId": unique_id,
        "account": account,
        "meter": "api.requests",
        "value": 1,
        "ts": TS,
        **overrides,
    }


def landed_lines(data_dir: Path) -> list[dict]:
    """Every event line the API has landed, in file order."""
    lines = []
    for path in sorted((data_dir / "landing" / "api").rglob("*.ndjson")):
        lines += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return lines


def landed_ids(data_dir: Path) -> list[str]:
    return [line["uniqueId"] for line in landed_lines(data_dir)]
