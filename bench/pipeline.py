"""How the harness runs the real pipeline. These two functions are the only place it does, so
switching the incremental measurement to partitioned runs is a change here, nothing else.

Both run every asset and check of the code location in process (`dagster.materialize`), as the
`billing_pipeline` job does (everything but the reverse-ETL pushes, which need destination
credentials), on an ephemeral instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from dagster_billing.defs.resources import BillingWarehouse, dbt_resource

# What `incremental_build` currently does, written into the results so a reader knows what the
# incremental figure measured.
INCREMENTAL_PATH = (
    "land new files (landing skips files already landed, by sha256), then dbt build of every "
    "model (tables rebuilt from raw), then exports"
)
# True while dbt rebuilds every table from raw on each run: the incremental figure then measures
# a full rebuild plus landing of the batch, not work proportional to the batch.
DBT_REBUILDS_FULLY = True


def full_build(
    warehouse: BillingWarehouse, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Everything from the landing files: plans, landing, dbt build, exports, checks."""
    return _materialize_everything(warehouse, instance)


def incremental_build(
    warehouse: BillingWarehouse, instance: dg.DagsterInstance, new_files: Sequence[Path]
) -> dg.ExecuteInProcessResult:
    """Bring a built warehouse up to date after `new_files` arrived in its landing directory.

    On this branch there is no partitioned or incremental dbt yet, so the real incremental path is
    the same job: landing lands only the new files, dbt rebuilds everything. Once the models are
    incremental/partitioned, select the new files' partitions here (e.g. `partition_key=` or a
    partition range for the days/months the batch touches) and set DBT_REBUILDS_FULLY = False.
    """
    del new_files  # the landing asset finds them itself
    return _materialize_everything(warehouse, instance)


def _materialize_everything(
    warehouse: BillingWarehouse, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    from dagster_billing.definitions import pipeline_assets_and_checks

    return dg.materialize(
        pipeline_assets_and_checks(),
        resources={"warehouse": warehouse, "dbt": dbt_resource()},
        instance=instance,
        raise_on_error=True,
    )
