"""The dbt project as one asset set, `billing_dbt_models`, whose assets carry one of three
partitions definitions (BillingTranslator.get_partitions_def, from dbt tags that dbt_project.yml
sets per folder):

- tag:partition_day              daily partitions (UTC event day): usage rollups
- tag:partition_billing_period   monthly partitions (billing period): the ledger
- everything else                unpartitioned: seeds, staging, rating, drafts, marts

A job holds one partitions definition (defs/jobs.py), so a run selects the unpartitioned models
with at most one of the two partitioned sets, and Dagster runs them in ONE step: one dbt
invocation per run (decision 86). Every invocation of a run gets the same clock (`as_of`: the run
tag billing/as_of, else the time the run was created), so drafts, run-rates and finalization agree.
Tests are selected "buildable": a test runs once all its parents are built or upstream.
"""

import os
from datetime import UTC, datetime

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_billing.defs.dbt.partitions import BILLING_PERIOD_PARTITIONS, USAGE_DAY_PARTITIONS
from dagster_billing.defs.dbt.project import billing_project
from dagster_billing.defs.dbt.translator import AUDIT_TAG, BillingTranslator
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse, dbt_invocation_target
from dagster_billing.lib.dbt_args import (
    dbt_build_args,
    finalization_vars,
    parse_dbt_timestamp,
    run_environment,
    run_vars,
    usage_window_vars,
)
from dagster_billing.lib.environ import scoped_environ
from dagster_billing.lib.warehouse_lock import is_lock_conflict, retry_while_locked

AS_OF_TAG = "billing/as_of"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


def run_as_of(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> datetime:
    """The run's clock: the billing/as_of tag ('%Y-%m-%dT%H:%M:%S', UTC) or the run's creation time."""
    tagged = context.run.tags.get(AS_OF_TAG)
    if tagged:
        return parse_dbt_timestamp(tagged)
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record else datetime.now(UTC)
    return created.replace(microsecond=0)


def stream_dbt(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: BillingWarehouse,
    args: list[str],
    extra_vars: dict[str, str] | None = None,
    **cli_kwargs,
):
    """Run dbt with the run's clock and `extra_vars` and stream dagster-dbt's events."""
    dbt_vars = run_vars(as_of=run_as_of(context)) | (extra_vars or {})
    # dagster-dbt reads DBT_INDIRECT_SELECTION when it builds the command line; the subprocess
    # inherits the run vars (read by the run_var macro) from the environment. dbt's JSON
    # artifacts (manifest.json, run_results.json: about 0.5 s and 1 CPU-s per invocation) are read
    # by neither Dagster nor this project: written only when the deployment sets
    # DBT_WRITE_JSON=true (decision 88). dbt's partial-parse state is written either way. dbt's
    # log file (dbt.log in the invocation's folder) at info, what Dagster shows, unless the
    # deployment sets DBT_LOG_LEVEL_FILE (debug: every statement; decision 90).
    environment = {
        "DBT_INDIRECT_SELECTION": "buildable",
        "DBT_WRITE_JSON": os.environ.get("DBT_WRITE_JSON", "false"),
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "info"),
    } | run_environment(dbt_vars)
    name = f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}"
    with (
        dbt_invocation_target(warehouse, name) as target_path,
        warehouse.dbt_environment(),
        scoped_environ(environment),
    ):
        yield from _dbt_waiting_for_lock(
            context, dbt, warehouse, args, target_path=target_path, **cli_kwargs
        )


def _dbt_waiting_for_lock(context, dbt, warehouse: BillingWarehouse, args: list[str], **cli_kwargs):
    """dbt's events; a lock held by another process is waited for, not a failed run.

    The warehouse is checked first (BillingWarehouse.connect waits with backoff). A process that
    takes the lock between that check and dbt's own connection makes dbt fail before it builds
    anything: that invocation is run again, with the same wait, as long as it had produced no
    event yet (so nothing is reported twice)."""

    def invoke():
        warehouse.wait_until_writable()
        invocation = dbt.cli(args, context=context, raise_on_error=False, **cli_kwargs)
        events = iter(invocation.stream())
        first = next(events, None)
        if first is None and not invocation.is_successful():
            error = invocation.get_error()
            if error is not None and is_lock_conflict(error):
                raise error
        return invocation, first, events

    invocation, first, rest = retry_while_locked(
        invoke,
        warehouse.duckdb_path,
        logger=context.log,
    )
    if first is not None:
        yield first
        yield from rest
    error = invocation.get_error()
    if error is not None:
        raise error


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The run vars of the partitioned models the step selected: the usage days to recompute
    (the day partitions' window) or the billing periods to finalize (up to the window's end).
    The step's assets definition is the selected subset: its partitions definition is that of
    its partitioned models (None when it selected only unpartitioned ones)."""
    partitions = context.assets_def.partitions_def
    if partitions == USAGE_DAY_PARTITIONS:
        window = context.partition_time_window
        return usage_window_vars(window.start, window.end)
    if partitions == BILLING_PERIOD_PARTITIONS:
        return finalization_vars(context.partition_time_window.end)
    return {}


@dbt_assets(
    manifest=billing_project.manifest_path,
    project=billing_project,
    dagster_dbt_translator=BillingTranslator(),
    # Not the audit tests (translator.AUDIT_TAG): a run's checks cover the rows it adds.
    exclude=f"tag:{AUDIT_TAG}",
    # A backfill of day partitions (or of billing periods) is one dbt invocation over its range.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
)
def billing_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: BillingWarehouse,
    config: DbtBuildConfig,
):
    """Seeds, staging, usage rollups, rating, draft invoices, the ledger and marts: what the run
    selected, in one dbt invocation."""
    args = dbt_build_args(full_refresh=config.full_refresh)
    yield from stream_dbt(context, dbt, warehouse, args, partition_vars(context))
