"""`billing`: the command line for sample data, plans and run summaries.

The pipeline itself runs through Dagster (`dagster job execute -j billing_pipeline`, `make demo`,
or the UI); these commands prepare inputs and report on what the pipeline produced.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import date
from pathlib import Path

import click

from dagster_billing.paths import PLANS_DIR, SEEDS_DIR


@click.group()
def main() -> None:
    """Warehouse-native usage billing."""


@main.command()
@click.option(
    "--events", type=int, default=1_000_000, show_default=True, help="Approximate rows to write."
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-01-01", show_default=True)
@click.option("--days", type=int, default=59, show_default=True)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Landing directory."
)
@click.option(
    "--seeds", "seeds_dir", type=click.Path(path_type=Path, exists=True), default=SEEDS_DIR
)
def generate(events: int, seed: int, start, days: int, out_dir: Path, seeds_dir: Path) -> None:
    """Write deterministic sample usage files (NDJSON + CSV) into a landing directory."""
    from dagster_billing.datagen import generate_events

    summary = generate_events(
        out_dir,
        events=events,
        seed=seed,
        start=date(start.year, start.month, start.day),
        days=days,
        accounts_csv=seeds_dir / "accounts.csv",
        meters_csv=seeds_dir / "meters.csv",
    )
    click.echo(
        json.dumps(
            {"out_dir": str(out_dir), **summary.to_dict(), "files": len(summary.files)}, indent=2
        )
    )


@main.group()
def plans() -> None:
    """Validate and compile price plans."""


@plans.command("compile")
@click.option(
    "--plans", "plans_dir", type=click.Path(path_type=Path, exists=True), default=PLANS_DIR
)
@click.option(
    "--seeds", "seeds_dir", type=click.Path(path_type=Path, exists=True), default=SEEDS_DIR
)
def compile_command(plans_dir: Path, seeds_dir: Path) -> None:
    """Validate plans/*.yaml and write the price tables (seeds/price_*.csv)."""
    from dagster_billing.pricing.plans import PlanError, compile_plans

    try:
        counts = compile_plans(plans_dir, seeds_dir)
    except PlanError as error:
        raise click.ClickException(str(error)) from None
    click.echo(", ".join(f"{table}: {rows} rows" for table, rows in counts.items()))


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
def summary(data_dir: Path) -> None:
    """Print what the last pipeline run produced: events, invoices, totals, export files."""
    from dagster_billing.defs.resources import BillingWarehouse
    from dagster_billing.reporting import render_summary

    warehouse = BillingWarehouse(data_dir=str(data_dir))
    if not warehouse.duckdb_path.exists():
        raise click.ClickException(
            f"no warehouse at {warehouse.duckdb_path}: run the pipeline first"
        )
    with warehouse.connect(read_only=True) as connection:
        click.echo(render_summary(connection, warehouse.exports_dir))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="uvicorn worker processes (idempotency holds across them: it lives in SQLite).",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option("--log-level", default="warning", show_default=True)
def serve(host: str, port: int, workers: int, data_dir: Path, log_level: str) -> None:
    """Run the ingestion API (POST /v1/measurements) on uvicorn."""
    import os

    import uvicorn

    os.environ["BILLING_DATA_DIR"] = str(data_dir.resolve())
    uvicorn.run(
        "dagster_billing.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between polls."
)
@click.option("--once", is_flag=True, help="One poll (and at most one run), then exit.")
def watch(data_dir: Path, interval: float, once: bool) -> None:
    """Land new files and rate them as they arrive, without the Dagster daemon."""
    from dagster_billing.watch import watch as watch_loop

    with contextlib.suppress(KeyboardInterrupt):
        watch_loop(data_dir, interval=interval, once=once, echo=click.echo)


@main.group("api-keys")
def api_keys() -> None:
    """API keys of the ingestion API: one tenant per key, a tenant owns accounts."""


def _api_state(data_dir: Path):
    from dagster_billing.api.settings import ApiSettings
    from dagster_billing.api.state import ApiState

    settings = ApiSettings(data_dir=data_dir.resolve())
    return ApiState(settings.state_path, settings.landing_dir)


_data_dir_option = click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)


@api_keys.command("create")
@click.option("--tenant", required=True, help="Tenant id: a-z, 0-9, '_' or '-', up to 32.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="Account the tenant owns (repeat, or comma-separated). Added to the tenant's accounts.",
)
@click.option(
    "--seeds", "seeds_dir", type=click.Path(path_type=Path, exists=True), default=SEEDS_DIR
)
@_data_dir_option
def api_keys_create(tenant: str, accounts: tuple[str, ...], seeds_dir: Path, data_dir: Path):
    """Create a key for TENANT and print it once (only its hash is stored)."""
    from dagster_billing.api.settings import ApiSettings
    from dagster_billing.api.state import StateError

    names = [name.strip() for value in accounts for name in value.split(",") if name.strip()]
    known = ApiSettings(data_dir=data_dir, seeds_dir=seeds_dir).known_accounts()
    unknown = sorted(set(names) - known)
    if unknown:
        raise click.ClickException(
            f"unknown accounts (not in {seeds_dir / 'accounts.csv'}): {', '.join(unknown)}"
        )
    state = _api_state(data_dir)
    try:
        created = state.create_key(tenant, names)
    except StateError as error:
        raise click.ClickException(str(error)) from None
    finally:
        state.close()
    click.echo(created.token)
    click.echo(
        f"key {created.key_id} for tenant {created.tenant_id}; store it now, it is not shown again",
        err=True,
    )


@api_keys.command("list")
@_data_dir_option
def api_keys_list(data_dir: Path) -> None:
    """Keys (id, tenant, accounts, revoked), never secrets."""
    state = _api_state(data_dir)
    try:
        click.echo(json.dumps(state.list_keys(), indent=2))
    finally:
        state.close()


@api_keys.command("revoke")
@click.argument("key_id")
@_data_dir_option
def api_keys_revoke(key_id: str, data_dir: Path) -> None:
    """Revoke a key (running servers stop accepting it within 5 seconds)."""
    from dagster_billing.api.state import StateError

    state = _api_state(data_dir)
    try:
        state.revoke_key(key_id)
    except StateError as error:
        raise click.ClickException(str(error)) from None
    finally:
        state.close()
    click.echo(f"revoked {key_id}")


if __name__ == "__main__":
    sys.exit(main())
