"""`billing`: the command line for sample data, plans, run summaries and the local contract servers.

The pipeline itself runs through Dagster (`dagster job execute -j billing_pipeline`, `make demo`,
or the UI); these commands prepare inputs and report on what the pipeline produced.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import click

from dagster_billing.paths import PLAN_SCHEMA_PATH, PLANS_DIR, SEEDS_DIR


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
@click.option(
    "--ids",
    type=click.Choice(["time-ordered", "random"]),
    default="time-ordered",
    show_default=True,
    help="uniqueIds as the SDK makes them (UUIDv7s of the event time) or random (evt_<16 hex>).",
)
def generate(
    events: int, seed: int, start, days: int, out_dir: Path, seeds_dir: Path, ids: str
) -> None:
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
        ids=ids,
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


@main.group()
def fakes() -> None:
    """Local contract servers for NetSuite, Salesforce and Stripe (127.0.0.1)."""


def _fake_options(function):
    for option in reversed(
        [
            click.option("--netsuite-port", type=int, default=8701, show_default=True),
            click.option("--salesforce-port", type=int, default=8702, show_default=True),
            click.option("--stripe-port", type=int, default=8703, show_default=True),
            click.option(
                "--fault-rate",
                type=float,
                default=0.0,
                show_default=True,
                help="Share of API requests answered 429/5xx or timed out.",
            ),
            click.option("--fault-seed", type=int, default=0, show_default=True),
            click.option(
                "--timeout-delay",
                type=float,
                default=65.0,
                show_default=True,
                help="Seconds a 'timed out' response is held back (above the client timeout).",
            ),
            click.option(
                "--state-dir",
                type=click.Path(path_type=Path),
                default=None,
                help=(
                    "Where the Salesforce TLS certificate, its CA, env.sh and the records the "
                    "servers hold between runs go (default: a temp dir)."
                ),
            ),
            click.option(
                "--fresh",
                is_flag=True,
                help="Start the servers empty: forget the records they kept in --state-dir.",
            ),
        ]
    ):
        function = option(function)
    return function


def _fake_settings(options: dict) -> tuple[Path, dict[str, int], dict]:
    ports = {name: options.pop(f"{name}_port") for name in ("netsuite", "salesforce", "stripe")}
    state_dir = options.pop("state_dir") or Path(tempfile.mkdtemp(prefix="billing-fakes-"))
    if options.pop("fresh"):
        shutil.rmtree(state_dir / "records", ignore_errors=True)
    # As a vendor's system would, the servers keep their records from one run to the next.
    return state_dir, ports, {**options, "persist": True}


@fakes.command("serve")
@_fake_options
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write `export NETSUITE_...` lines for the sync resources here (default: state dir).",
)
def fakes_serve(env_file: Path | None, **options) -> None:
    """Serve all three until Ctrl-C; the sync environment is written to an env file."""
    from dagster_billing.fakes.serve import serve

    state_dir, ports, faults = _fake_settings(options)
    serve(state_dir, env_file or state_dir / "env.sh", ports, **faults)


@fakes.command("run", context_settings={"ignore_unknown_options": True})
@_fake_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def fakes_run(command: tuple[str, ...], **options) -> None:
    """Start all three, run COMMAND with the sync environment pointing at them, print their state.

    Example: billing fakes run -- dagster job execute -m dagster_billing.definitions -j billing_sync
    """
    from dagster_billing.fakes.serve import run

    state_dir, ports, faults = _fake_settings(options)
    sys.exit(run(state_dir, list(command), ports, **faults))


@plans.command("schema")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=PLAN_SCHEMA_PATH,
    show_default=True,
    help="Where to write the JSON Schema of plan and override files.",
)
@click.option("--check", is_flag=True, help="Fail if the file differs instead of writing it.")
def schema_command(out: Path, check: bool) -> None:
    """Write the JSON Schema of plan files (docs/plan.schema.json)."""
    from dagster_billing.pricing.plans import plan_json_schema_text

    text = plan_json_schema_text()
    if check:
        if not out.exists() or out.read_text() != text:
            raise click.ClickException(f"{out} is stale: run `billing plans schema`")
        click.echo(f"{out} is current")
        return
    out.write_text(text)
    click.echo(f"wrote {out}")


@main.command()
@click.option(
    "--plans",
    "plans_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Plans directory (plan YAML files, overrides/).",
)
@click.option(
    "--subscriptions",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="CSV, JSON or YAML: account_id, plan_code, starts_on, [ends_on, trial_ends_on, overrides].",
)
@click.option(
    "--accounts",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="CSV, JSON or YAML: account_id, currency, [account_name, billing_email].",
)
@click.option(
    "--usage",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Events (NDJSON/CSV landing format) or quantities (account, meter, period, quantity).",
)
@click.option(
    "--meters",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Meters CSV (default: seeds/meters.csv).",
)
@click.option(
    "--coupons",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="CSV, JSON or YAML: account_id, coupon_type (percentage|fixed), percent_off or "
    "amount_off, [max_discount, valid_from, valid_to, coupon_id, description].",
)
@click.option(
    "--credits",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Prepaid credit grants: account_id, amount, [priority, granted_on, expires_on, "
    "meter_code or fee_type (subscription|usage|commitment), grant_id, description].",
)
@click.option(
    "--billing-cycles",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Billing cycles: account_id, [billing_interval: week|month|quarter|year], "
    "[anchor_date] (anniversary) or [anchor_day] (1-28).",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option(
    "--keep-data",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the run's data directory (warehouse.duckdb) here for inspection.",
)
def price(
    plans_dir: Path,
    subscriptions: Path,
    accounts: Path,
    usage: Path,
    meters: Path | None,
    coupons: Path | None,
    credits: Path | None,
    billing_cycles: Path | None,
    out_dir: Path,
    keep_data: Path | None,
) -> None:
    """Price files with the pipeline's own assets on a temporary warehouse; write invoices."""
    from dagster_billing.pricing.batch import PricingFailed, outcome_warnings, price_files
    from dagster_billing.pricing.inputs import InputError
    from dagster_billing.pricing.plans import PlanError

    try:
        result = price_files(
            plans_dir=plans_dir,
            subscriptions=subscriptions,
            accounts=accounts,
            usage=usage,
            meters=meters,
            out_dir=out_dir,
            keep_data_dir=keep_data,
            coupons=coupons,
            credits=credits,
            billing_cycles=billing_cycles,
        )
    except (PlanError, InputError, PricingFailed) as error:
        raise click.ClickException(str(error)) from None
    for warning in outcome_warnings(result):
        click.echo(f"Warning: {warning}", err=True)
    click.echo(json.dumps(result.to_dict(), indent=2))
    for problem in result.problems:
        click.echo(f"Error: {problem['error']}", err=True)
    if result.problems:
        failed = "; ".join(
            part
            for part in (
                result.failed_plans and f"plans {', '.join(result.failed_plans)}",
                result.failed_accounts and f"accounts {', '.join(result.failed_accounts)}",
            )
            if part
        )
        click.echo(
            f"Error: {len(result.problems)} problems; not priced: {failed or 'some usage rows'}"
            f" (the rest was priced: {result.invoices} invoices)",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.option(
    "--draft",
    "draft_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="Directory of draft plan versions: each is in force from its effective_from (to its "
    "effective_to or the next draft of its plan); the current versions on the other days.",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option(
    "--plans", "plans_dir", type=click.Path(path_type=Path, exists=True), default=PLANS_DIR
)
@click.option(
    "--seeds", "seeds_dir", type=click.Path(path_type=Path, exists=True), default=SEEDS_DIR
)
def simulate(draft_dir: Path, data_dir: Path, plans_dir: Path, seeds_dir: Path) -> None:
    """Price the warehouse's history with draft plans; show the difference per account."""
    from dagster_billing.pricing.batch import PricingFailed, prepare_dbt_manifest
    from dagster_billing.pricing.plans import PlanError
    from dagster_billing.pricing.simulation import validate_drafts

    prepare_dbt_manifest()
    from dagster_billing.defs.pricing.simulation import run_simulation
    from dagster_billing.defs.resources import BillingWarehouse

    warehouse = BillingWarehouse(
        data_dir=str(data_dir), plans_dir=str(plans_dir), seeds_dir=str(seeds_dir)
    )
    if not warehouse.duckdb_path.exists():
        raise click.ClickException(
            f"no warehouse at {warehouse.duckdb_path}: run the pipeline first"
        )
    try:
        validate_drafts(plans_dir, seeds_dir, draft_dir)
        report = run_simulation(warehouse, draft_dir)
    except (PlanError, PricingFailed) as error:
        raise click.ClickException(str(error)) from None
    if not report["drafts"]:
        raise click.ClickException(f"no draft plans (*.yaml) in {draft_dir}")
    click.echo(render_simulation(report))


def render_simulation(report: dict) -> str:
    drafts = ", ".join(
        f"{d['code']} (draft v{d['version']} from {d['effective_from']}"
        + (f" to {d['effective_to']})" if d["effective_to"] else ")")
        for d in report["drafts"]
    )
    lines = [f"Simulated {drafts} against the current plans (charges before coupons and credits):"]
    header = f"{'account':<24} {'currency':<8} {'current':>14} {'draft':>14} {'difference':>14}"
    lines += ["", header, "-" * len(header)]
    for row in report["accounts"]:
        lines.append(
            f"{row['account_id']:<24} {row['currency']:<8} {row['current_amount']:>14} "
            f"{row['draft_amount']:>14} {row['difference']:>14}"
        )
    lines.append("-" * len(header))
    for total in report["totals"]:
        lines.append(
            f"{'total (' + str(total['accounts_changed']) + ' changed)':<24} {total['currency']:<8} "
            f"{total['current_amount']:>14} {total['draft_amount']:>14} {total['difference']:>14}"
        )
    lines += ["", "Report: " + ", ".join(report["files"])]
    return "\n".join(lines)


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
        click.echo(_portal_link_lines(connection, data_dir))


@main.command("sync-report")
@click.option("--run-id", default=None, help="A billing_sync run's id (default: the latest).")
def sync_report(run_id: str | None) -> None:
    """What a billing_sync run pushed, per push asset, and whether each destination matches the
    warehouse (its checks), from the Dagster instance in DAGSTER_HOME. Exit status 1 when the
    run failed or a check did not pass."""
    import dagster as dg

    from dagster_billing.sync.report import latest_sync_run, push_reports, render_sync_report

    with dg.DagsterInstance.get() as instance:
        try:
            run = instance.get_run_by_id(run_id) if run_id else latest_sync_run(instance)
        except LookupError as error:
            raise click.ClickException(str(error)) from error
        if run is None:
            raise click.ClickException(f"no run {run_id} in this Dagster instance")
        reports = push_reports(instance, run.run_id)
    click.echo(render_sync_report(run.run_id, run.status.value, reports))
    passed = all(all(report.checks.values()) for report in reports)
    sys.exit(0 if run.status == dg.DagsterRunStatus.SUCCESS and passed else 1)


def _portal_link_lines(connection, data_dir: Path) -> str:
    """One customer-portal link for the end of a run's summary (the account with the most lines
    in the latest period). Without BILLING_PORTAL_SECRET a local secret file is created under the
    data directory (never in the repository), and the lines say so; a problem with the secret is
    reported, never raised (the run itself succeeded)."""
    import os

    from dagster_billing.portal.links import (
        SECRET_ENV,
        PortalNotConfigured,
        init_secret_file,
        portal_link,
        secret_file,
    )

    [(account_id,)] = connection.execute(
        "select account_id from billing.fct_invoices"
        " order by period_start desc, line_count desc, account_id limit 1"
    ).fetchall() or [(None,)]
    if account_id is None:
        return "Customer portal: no invoices yet"
    note = ""
    if not os.environ.get(SECRET_ENV) and not secret_file(data_dir).is_file():
        note = (
            f" (signed with a new local secret, {init_secret_file(data_dir)}; set {SECRET_ENV}"
            " to use your own)"
        )
    try:
        link = portal_link(account_id, "7d", data_dir=data_dir)
    except PortalNotConfigured as error:
        return f"Customer portal: no link ({error})"
    return f"Customer portal of {account_id}, valid 7 days (`make serve` first){note}:\n  {link}"


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option(
    "--dagster-home",
    type=click.Path(path_type=Path),
    envvar="DAGSTER_HOME",
    required=True,
    help="The Dagster instance the runs are recorded in (created from dagster.yaml if missing).",
)
@click.option(
    "--events", type=int, default=1_000_000, show_default=True, help="Approximate sample rows."
)
@click.option(
    "--as-of",
    default="2026-03-05T00:00:00",
    show_default=True,
    help="The runs' clock (UTC): after February's grace period, so January and February close.",
)
@click.option(
    "--first-day",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2026-01-01",
    show_default=True,
    help="The sample data's first day, where the daily run's partition range starts.",
)
@click.option(
    "--close-period",
    default="2026-02-01",
    show_default=True,
    help="The last billing period the close run finalizes (from the first day's period on).",
)
@click.option("--fresh", is_flag=True, help="Delete the data directory first.")
def demo(
    data_dir: Path,
    dagster_home: Path,
    events: int,
    as_of: str,
    first_day,
    close_period: str,
    fresh: bool,
) -> None:
    """Sample events -> the daily pipeline -> the period close -> invoices on disk, one line per
    stage; the full Dagster and dbt output goes to <data-dir>/logs/demo.log."""
    import os

    from dagster_billing.demo import DemoFailed, run_demo

    data_dir = data_dir.resolve()
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
    elif (data_dir / "landing").exists():
        raise click.ClickException(
            f"{data_dir} already holds data: use --fresh to start over (it deletes it)"
        )
    try:
        run_demo(
            data_dir,
            dagster_home.resolve(),
            events=events,
            first_day=first_day.date(),
            as_of=as_of,
            close_period=close_period,
            echo=click.echo,
        )
    except DemoFailed as failure:
        raise click.ClickException(str(failure)) from None
    from dagster_billing.defs.resources import BillingWarehouse
    from dagster_billing.reporting import render_summary

    warehouse = BillingWarehouse(data_dir=str(data_dir))
    exports = Path(os.path.relpath(warehouse.exports_dir))
    with warehouse.connect(read_only=True) as connection:
        click.echo(render_summary(connection, exports))
        portal = _portal_link_lines(connection, data_dir)
    click.echo(
        f"PDFs of the final invoices: {exports / 'pdf'}. Next: `make dev` shows these runs in the "
        "Dagster UI; the README's 'Where to look next' has the rest."
    )
    click.echo(portal)


@main.command("invoice-pdf")
@click.argument("invoice_id")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Default: <id>.pdf")
def invoice_pdf(invoice_id: str, data_dir: Path, out_file: Path | None) -> None:
    """Render one invoice (a draft too) or credit note (its id, cn-...) as PDF, as the close
    job renders final documents."""
    from dagster_billing.defs.invoicing.documents import (
        load_credit_note_contexts,
        load_invoice_contexts,
    )
    from dagster_billing.defs.resources import BillingWarehouse
    from dagster_billing.lib.documents import render_pdf

    warehouse = BillingWarehouse(data_dir=str(data_dir))
    with warehouse.connect(read_only=True) as connection:
        contexts = load_invoice_contexts(connection, "invoice_id = ?", [invoice_id])
        contexts = contexts or load_credit_note_contexts(
            connection, "credit_note_id = ?", [invoice_id]
        )
    if not contexts:
        raise click.ClickException(f"no invoice or credit note {invoice_id}")
    out_file = out_file or Path(f"{invoice_id}.pdf")
    out_file.write_bytes(render_pdf(contexts[0]))
    click.echo(str(out_file))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="uvicorn worker processes, each on its own SO_REUSEPORT socket (idempotency holds "
    "across them: it lives in SQLite).",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option("--log-level", default="warning", show_default=True)
def serve(host: str, port: int, workers: int, data_dir: Path, log_level: str) -> None:
    """Run the ingestion API (POST /v1/measurements) on uvicorn."""
    import os

    from dagster_billing.api.workers import serve as serve_workers

    os.environ["BILLING_DATA_DIR"] = str(data_dir.resolve())
    # Each writer thread validates a group of requests (a few thousand rows) with polars: spread
    # over a pool, such small frames cost more CPU in hand-offs than they save. The threads and
    # workers are the parallelism (measured: 16.6 against 19.3 us of CPU per event).
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    sys.exit(serve_workers(host, port, workers, log_level))


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


@main.command("dbt-server")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="BILLING_DBT_SERVER",
    required=True,
    help="Unix socket to listen at; `billing-dbt` uses it when BILLING_DBT_SERVER names it.",
)
@click.option(
    "--idle-timeout",
    type=float,
    default=None,
    help="Exit after this many seconds without a dbt invocation (default: never).",
)
@click.option("--exit-with-parent", is_flag=True, help="Exit when the starting process exits.")
def dbt_server(socket_path: Path, idle_timeout: float | None, exit_with_parent: bool) -> None:
    """Import dbt once, compile the project's Jinja templates once, and fork a child per dbt
    invocation (about 3 s of CPU less per dbt run, and another 1 s: lib/dbt_warmup.py)."""
    from dagster_billing.lib.dbt_cli import run_dbt
    from dagster_billing.lib.dbt_server import serve
    from dagster_billing.lib.dbt_warmup import warm_up
    from dagster_billing.paths import DBT_MANIFEST_PATH

    serve(
        socket_path,
        run_dbt,
        idle_timeout=idle_timeout,
        exit_with_parent=exit_with_parent,
        prepare=lambda: warm_up(DBT_MANIFEST_PATH),
    )


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.option(
    "--fail-dead-runs",
    is_flag=True,
    help="Mark started runs whose process is gone as failed and free their pool slots.",
)
def doctor(data_dir: Path, fail_dead_runs: bool) -> None:
    """Is anything accepted stranded? Exit 1 if so.

    Landing files not landed, events the API acknowledged that are not in the warehouse, runs of
    $DAGSTER_HOME whose process is gone (they would hold the duckdb pool)."""
    import os

    from dagster_billing.doctor import diagnose

    instance = None
    home = os.environ.get("DAGSTER_HOME")
    if home and Path(home).is_dir():
        import dagster as dg

        instance = dg.DagsterInstance.get()
    diagnosis = diagnose(data_dir, instance=instance, fail_dead_runs=fail_dead_runs)
    if home and instance is None:
        diagnosis.notes.append(f"runs not checked: DAGSTER_HOME {home} does not exist yet")
    click.echo(diagnosis.text())
    if diagnosis.problems:
        sys.exit(1)


@main.group()
def analytics() -> None:
    """The published analytics snapshots (read-only copies of the marts, one per pipeline run)."""


_seq_option = click.option(
    "--seq", type=int, default=None, help="A kept snapshot's sequence number (default: current)."
)


def _snapshot_or_fail(data_dir: Path, seq: int | None) -> Path:
    from dagster_billing.analytics import NoSnapshotYet, snapshot_path

    try:
        return snapshot_path(data_dir, seq)
    except NoSnapshotYet as error:
        raise click.ClickException(str(error)) from None


@analytics.command("path")
@_seq_option
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
def analytics_path(seq: int | None, data_dir: Path) -> None:
    """Print the current snapshot's file (open it read-only: duckdb -readonly PATH)."""
    click.echo(str(_snapshot_or_fail(data_dir, seq)))


@analytics.command("list")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
def analytics_list(data_dir: Path) -> None:
    """The kept snapshots, oldest first: sequence, run, its clock, invoices and rated rows."""
    from dagster_billing.analytics import current_snapshot_path, list_snapshots, open_snapshot
    from dagster_billing.analytics import snapshot_meta as read_meta

    snapshots = list_snapshots(data_dir)
    if not snapshots:
        raise click.ClickException(f"no analytics snapshots in {data_dir}/analytics yet")
    current = current_snapshot_path(data_dir)
    click.echo(f"{'seq':>6}  {'created (UTC)':<19}  {'as_of':<19}  {'run id':<36}  file")
    for snapshot in snapshots:
        with open_snapshot(data_dir, snapshot.seq) as connection:
            meta = read_meta(connection)
        marker = "  (current)" if snapshot.path == current else ""
        as_of = f"{meta['as_of']:%Y-%m-%dT%H:%M:%S}" if meta["as_of"] else "-"
        click.echo(
            f"{snapshot.seq:>6}  {meta['created_at']:%Y-%m-%dT%H:%M:%S}  {as_of:<19}  "
            f"{meta['run_id']:<36}  {snapshot.path.name}{marker}"
        )


@analytics.command("shell", context_settings={"ignore_unknown_options": True})
@_seq_option
@click.option(
    "--data-dir", type=click.Path(path_type=Path), envvar="BILLING_DATA_DIR", required=True
)
@click.argument("duckdb_args", nargs=-1, type=click.UNPROCESSED)
def analytics_shell(seq: int | None, data_dir: Path, duckdb_args: tuple[str, ...]) -> None:
    """Open the current snapshot in the DuckDB shell, read-only (extra arguments go to duckdb,
    e.g. `billing analytics shell -- -c "select * from meta.snapshot"`)."""
    import subprocess

    path = _snapshot_or_fail(data_dir, seq)
    beside = Path(sys.executable).with_name("duckdb")
    executable = str(beside) if beside.exists() else shutil.which("duckdb")
    if executable is None:
        raise click.ClickException(
            "no `duckdb` shell found: it comes with the duckdb-cli package (`make install`)"
        )
    sys.exit(subprocess.call([executable, "-readonly", str(path), *duckdb_args]))


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


@main.group()
def portal() -> None:
    """The customer portal: signed links to each account's pages (served by `billing serve`)."""


@portal.command("link")
@click.argument("account")
@click.option(
    "--expires",
    default="7d",
    show_default=True,
    help="How long the link works: 30m, 12h, 7d, 2w (at most 90 days).",
)
@click.option(
    "--base-url",
    envvar="BILLING_PORTAL_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Where `billing serve` is reached (env BILLING_PORTAL_URL).",
)
@click.option(
    "--seeds", "seeds_dir", type=click.Path(path_type=Path, exists=True), default=SEEDS_DIR
)
@_data_dir_option
def portal_link_command(
    account: str, expires: str, base_url: str, seeds_dir: Path, data_dir: Path
) -> None:
    """Print a signed URL that opens ACCOUNT's portal until it expires (like a Stripe customer
    portal session). Signed with BILLING_PORTAL_SECRET (or the file `init-secret` writes)."""
    from dagster_billing.api.settings import ApiSettings
    from dagster_billing.portal.links import PortalNotConfigured, portal_link

    if account not in ApiSettings(data_dir=data_dir, seeds_dir=seeds_dir).known_accounts():
        raise click.ClickException(
            f"unknown account {account!r} (not in {seeds_dir / 'accounts.csv'})"
        )
    try:
        click.echo(portal_link(account, expires, data_dir=data_dir, base_url=base_url))
    except (PortalNotConfigured, ValueError) as error:
        raise click.ClickException(str(error)) from None


@portal.command("init-secret")
@_data_dir_option
def portal_init_secret(data_dir: Path) -> None:
    """Create a local signing secret in $BILLING_DATA_DIR/portal/secret (mode 0600) if there is
    none; BILLING_PORTAL_SECRET, when set, takes precedence over it."""
    from dagster_billing.portal.links import init_secret_file

    click.echo(str(init_secret_file(data_dir)))


if __name__ == "__main__":
    sys.exit(main())
