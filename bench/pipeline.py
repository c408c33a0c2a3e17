"""How the harness runs the real pipeline: in process (`dagster.materialize`) on an ephemeral
instance, with the resources pointed at the variant's warehouse. What each variant runs is in
bench/variants.py (`full_build`, `incremental_build`); this module only knows how to run a
selection of the code location's assets.
"""

from __future__ import annotations

import dagster as dg

from dagster_billing.defs.resources import BillingWarehouse, dbt_resource


def materialize(
    warehouse: BillingWarehouse,
    instance: dg.DagsterInstance,
    *,
    selection,
    run_config: dict | None = None,
    partition_key: str | None = None,
) -> dg.ExecuteInProcessResult:
    """The assets in `selection` (with their checks) of those in-process runs hold: all but the
    reverse-ETL pushes and webhook delivery, which need destinations."""
    from dagster_billing.definitions import pipeline_assets_and_checks

    return dg.materialize(
        pipeline_assets_and_checks(),
        selection=selection,
        run_config=run_config,
        partition_key=partition_key,
        resources={"warehouse": warehouse, "dbt": dbt_resource()},
        instance=instance,
        raise_on_error=True,
    )
