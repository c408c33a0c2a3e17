"""Push assets generated from the dbt sync models: one graph-backed asset per sync object.

    <model> ─► load (pool duckdb) ─► push (pool <api>) ─► record (pool duckdb) ─► reconcile (pool <api>)

- load: rows of sync.<model> whose payload hash differs from the last synced one in the ledger
  (for immutable objects, final invoices and credit notes: rows never synced), read-only, plus
  destination ids of referenced records and the booked documents to reconcile against.
- push: the destination client sends them (batches the API allows, retries with backoff). Bad
  credentials or an unreachable API fail here, before any write: nothing is half-written.
- record: appends one ledger row per result; the per-run summary becomes the materialization's
  metadata; check `all_rows_synced` fails while any row is failed. A run stopped midway (token
  revoked) records what it did and then fails.
- reconcile (objects with meta.sync.reconcile): reads the destination through its API and
  compares counts and amounts per document with the final invoices of billing.fct_invoices,
  billing.fct_credit_notes or the paid invoices of billing.fct_invoice_payments, or (reconcile:
  fields) each record's fields with its row of the sync model.

Splitting the work this way keeps the DuckDB file in the `duckdb` pool (one writer) while the
HTTP part runs in a per-destination pool.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from dagster_billing.defs import groups
from dagster_billing.defs.dbt.project import billing_project
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.sync.ledger import LEDGER, load_plan, record_results
from dagster_billing.sync.push import FatalSyncError, PushOutcome, SyncPlan
from dagster_billing.sync.reconcile import Report
from dagster_billing.sync.report import RECONCILE_CHECK, ROWS_SYNCED_CHECK
from dagster_billing.sync.spec import SyncObject, load_sync_objects

PUSH_TAG = ("billing/reverse_etl", "push")
"""The tag of every push asset. They share the reverse_etl group with the sync_* models they
read, but only they talk to the destinations (and need credentials): the billing_sync job."""
PUSHES = dg.AssetSelection.tag(*PUSH_TAG)


class PushConfig(dg.Config):
    resend_all: bool = Field(
        default=False,
        description="Send every row, changed or not (e.g. after the destination was restored).",
    )


@dataclass(frozen=True)
class Destination:
    name: str
    resource_key: str
    pool: str
    push: Callable[[SyncPlan, Any], PushOutcome]
    reconcile: Callable[[SyncPlan, Any], Report] | None = None


def sync_objects(destination: str) -> list[SyncObject]:
    return [
        o for o in load_sync_objects(billing_project.manifest_path) if o.destination == destination
    ]


def is_push_asset(asset: dg.AssetsDefinition) -> bool:
    return any(spec.tags.get(PUSH_TAG[0]) == PUSH_TAG[1] for spec in asset.specs)


def push_asset_key(sync_object: SyncObject) -> dg.AssetKey:
    return dg.AssetKey([sync_object.destination, sync_object.object])


def build_push_assets(destination: Destination) -> list[dg.AssetsDefinition]:
    return [build_push_asset(obj, destination) for obj in sync_objects(destination.name)]


def _summary_metadata(plan: SyncPlan, outcome: PushOutcome) -> dict[str, Any]:
    summary = outcome.summary()
    failures = [
        {
            "external_id": r.external_id,
            "response_code": r.response_code,
            "in_doubt": r.in_doubt,
            "error": r.error,
        }
        for r in outcome.results
        if r.status != "synced"
    ]
    return {
        "model_rows": dg.MetadataValue.int(plan.model_rows),
        "changed_rows": dg.MetadataValue.int(len(plan.pending)),
        "frozen_rows_changed": dg.MetadataValue.int(len(plan.frozen_changed)),
        **{name: dg.MetadataValue.int(value) for name, value in summary.items()},
        "http_requests": dg.MetadataValue.int(outcome.stats.get("http_requests", 0)),
        "retried_requests": dg.MetadataValue.int(outcome.stats.get("retried_requests", 0)),
        "failures": dg.MetadataValue.json(failures[:50]),
        "ledger": dg.MetadataValue.text(LEDGER),
        **{
            name: dg.MetadataValue.text(str(value))
            for name, value in outcome.stats.items()
            if name not in ("http_requests", "retried_requests")
        },
    }


def build_push_asset(sync_object: SyncObject, destination: Destination) -> dg.AssetsDefinition:
    key = push_asset_key(sync_object)
    prefix = f"{sync_object.destination}__{sync_object.object}"
    upstream_objects = sorted({*sync_object.after, *sync_object.references.values()})
    ins = {
        "model": dg.AssetIn(
            key=dg.AssetKey([sync_object.schema, sync_object.model]), dagster_type=dg.Nothing
        )
    }
    for upstream in upstream_objects:
        ins[f"after_{upstream}"] = dg.AssetIn(
            key=dg.AssetKey([sync_object.destination, upstream]), dagster_type=dg.Nothing
        )
    reconciles = destination.reconcile is not None and sync_object.reconcile is not None
    reconciled_against = {
        "invoices": "holds what the final invoices of billing.fct_invoices hold: documents, line "
        "counts, totals",
        "credit_notes": "holds what billing.fct_credit_notes holds: documents, line counts, totals",
        "payments": "holds what the paid invoices of billing.fct_invoice_payments hold: documents, "
        "applied lines, amounts",
        "fields": f"holds a record for every row of {sync_object.table}, with every field of "
        "its payload",
    }.get(sync_object.reconcile)
    check_specs = [
        dg.AssetCheckSpec(
            ROWS_SYNCED_CHECK,
            asset=key,
            description="Every row of the sync model is in the destination with its current payload.",
        )
    ]
    if reconciles:
        check_specs.append(
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=key,
                description=f"{destination.name} {reconciled_against}.",
            )
        )

    @dg.op(name=f"{prefix}__load", pool=DUCKDB_POOL, ins={"upstream": dg.In(dg.Nothing)})
    def load(
        context: dg.OpExecutionContext, config: PushConfig, warehouse: BillingWarehouse
    ) -> SyncPlan:
        with warehouse.connect(read_only=True) as connection:
            plan = load_plan(connection, sync_object, resend_all=config.resend_all)
        if plan.frozen_changed:
            context.log.warning(
                f"{sync_object.name}: {len(plan.frozen_changed)} rows already synced are immutable "
                f"but their payload changed; not sent (resend_all sends them): "
                f"{', '.join(plan.frozen_changed[:20])}"
            )
        return plan

    @dg.op(
        name=f"{prefix}__push",
        pool=destination.pool,
        required_resource_keys={destination.resource_key},
    )
    def push(context: dg.OpExecutionContext, plan: SyncPlan) -> PushOutcome:
        if not plan.pending:
            context.log.info(f"{sync_object.name}: nothing changed since the last sync")
            return PushOutcome(())
        client = getattr(context.resources, destination.resource_key).client()
        try:
            return destination.push(plan, client)
        except FatalSyncError as error:
            raise dg.Failure(
                description=f"{sync_object.name}: {error}. Nothing was sent."
            ) from error
        finally:
            client.close()

    @dg.op(
        name=f"{prefix}__record",
        pool=DUCKDB_POOL,
        out={"result": dg.Out(), ROWS_SYNCED_CHECK: dg.Out(dg.Nothing)},
    )
    def record(
        context: dg.OpExecutionContext,
        warehouse: BillingWarehouse,
        plan: SyncPlan,
        outcome: PushOutcome,
    ):
        with warehouse.connect() as connection:
            record_results(connection, context.run_id, sync_object, outcome.results)
        if outcome.fatal_error:
            raise dg.Failure(
                description=f"{sync_object.name}: stopped after {len(outcome.results)} rows: {outcome.fatal_error}",
                metadata=_summary_metadata(plan, outcome),
            )
        failed = [r.external_id for r in outcome.results if r.status != "synced"]
        yield dg.Output(outcome.summary(), "result", metadata=_summary_metadata(plan, outcome))
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=ROWS_SYNCED_CHECK,
            passed=not failed,
            metadata={"failed_rows": len(failed), "failed": dg.MetadataValue.json(failed[:50])},
        )

    @dg.op(
        name=f"{prefix}__reconcile",
        pool=destination.pool,
        required_resource_keys={destination.resource_key},
        ins={"plan": dg.In(), "recorded": dg.In(dg.Nothing)},
        out={RECONCILE_CHECK: dg.Out(dg.Nothing)},
    )
    def reconcile(context: dg.OpExecutionContext, plan: SyncPlan):
        client = getattr(context.resources, destination.resource_key).client()
        try:
            report = destination.reconcile(plan, client)
        finally:
            client.close()
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=RECONCILE_CHECK,
            passed=report.passed,
            metadata={
                name: dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
                for name, value in report.metadata().items()
            },
        )

    def compose(**upstream):
        plan = load(upstream=list(upstream.values()))
        result, rows_synced = record(plan, push(plan))
        outputs = {
            "result": result,
            f"{key.to_python_identifier()}_{ROWS_SYNCED_CHECK}": rows_synced,
        }
        if reconciles:
            outputs[f"{key.to_python_identifier()}_{RECONCILE_CHECK}"] = reconcile(
                plan=plan, recorded=result
            )
        return outputs

    return dg.graph_asset(
        key=key,
        ins=ins,
        group_name=groups.REVERSE_ETL,
        tags=dict([PUSH_TAG]),
        kinds={sync_object.destination},
        description=(
            f"Pushes changed rows of {sync_object.table} to {destination.name} "
            f"({_target(sync_object)}) and records each result in {LEDGER}."
        ),
        check_specs=check_specs,
        metadata={"dbt_model": sync_object.model, "ledger": LEDGER},
    )(compose)


def _target(sync_object: SyncObject) -> str:
    return (
        sync_object.option("record_type")
        or sync_object.option("sobject")
        or sync_object.option("resource")
        or sync_object.object
    )
