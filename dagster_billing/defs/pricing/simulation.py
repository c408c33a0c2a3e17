from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_billing.defs import groups
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.pricing.plans import DRAFTS_DIR
from dagster_billing.pricing.simulation import simulate

CHARGE_LINES_KEY = dg.AssetKey(["intermediate", "int_invoice_charge_lines"])
SIMULATION_KEY = dg.AssetKey(["pricing", "simulation"])


class SimulationConfig(dg.Config):
    draft_dir: str | None = None
    """Draft plan versions to simulate; default: drafts/ in the warehouse's plans directory."""


@dg.asset(
    key=SIMULATION_KEY,
    deps=[CHARGE_LINES_KEY],
    group_name=groups.RATING,
    kinds={"dbt", "csv"},
    pool=DUCKDB_POOL,
)
def pricing_simulation(
    context: dg.AssetExecutionContext,
    config: SimulationConfig,
    warehouse: BillingWarehouse,
    dbt: DbtCliResource,
) -> dg.MaterializeResult:
    """Price the warehouse's history with the draft plans (plans/drafts/) next to the current
    ones, on a temporary copy of the warehouse, and report the difference per account and in
    total (exports/simulation/). Invoices are not touched. Without drafts it reports nothing."""
    draft_dir = (
        Path(config.draft_dir) if config.draft_dir else Path(warehouse.plans_dir) / DRAFTS_DIR
    )
    report = simulate(
        warehouse=warehouse,
        dbt=dbt,
        draft_dir=draft_dir,
        report_dir=warehouse.exports_dir / "simulation",
        log=context.log.info,
    )
    if not report.drafts:
        context.log.info(f"no draft plans in {draft_dir}: nothing to simulate")
        return dg.MaterializeResult(metadata={"drafts": 0, "draft_dir": str(draft_dir)})
    changed = [row for row in report.accounts if row["difference"] != "0.00"]
    table = "\n".join(
        ["| account | currency | current | draft | difference |", "|---|---|---:|---:|---:|"]
        + [
            f"| {row['account_id']} | {row['currency']} | {row['current_amount']} | "
            f"{row['draft_amount']} | {row['difference']} |"
            for row in report.accounts
        ]
    )
    return dg.MaterializeResult(
        metadata={
            "drafts": dg.MetadataValue.json(report.to_dict()["drafts"]),
            "totals": dg.MetadataValue.json(report.totals),
            "accounts_changed": len(changed),
            "by_account": dg.MetadataValue.md(table),
            "report": dg.MetadataValue.path(str(warehouse.exports_dir / "simulation")),
        }
    )


def run_simulation(warehouse: BillingWarehouse, draft_dir: Path) -> dict:
    """Materialize pricing/simulation alone (the CLI's entry point) and return its report."""
    import contextlib
    import json
    import sys

    from dagster_billing.defs.resources import dbt_resource
    from dagster_billing.pricing.batch import PricingFailed, error_chain

    # dbt's progress goes to stderr: stdout is for the report.
    with contextlib.redirect_stdout(sys.stderr):
        result = dg.materialize(
            [pricing_simulation],
            resources={"warehouse": warehouse, "dbt": dbt_resource()},
            run_config=dg.RunConfig(
                ops={"pricing__simulation": SimulationConfig(draft_dir=str(draft_dir))},
                loggers={"console": {"config": {"log_level": "WARNING"}}},
            ),
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    if not result.success:
        errors = [
            error_chain(event.step_failure_data.error)
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ]
        raise PricingFailed("simulation failed: " + "; ".join(errors))
    summary = warehouse.exports_dir / "simulation" / "summary.json"
    materialization = result.asset_materializations_for_node("pricing__simulation")[0]
    if materialization.metadata.get("drafts") == dg.MetadataValue.int(0):
        return {"drafts": [], "accounts": [], "totals": [], "files": []}
    report = json.loads(summary.read_text())
    report["files"] = [str(path) for path in sorted(summary.parent.iterdir())]
    return report
