import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_billing.defs.dbt.project import billing_project
from dagster_billing.defs.dbt.translator import BillingTranslator
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse
from dagster_billing.lib.dbt_args import dbt_build_args


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


@dbt_assets(
    manifest=billing_project.manifest_path,
    project=billing_project,
    dagster_dbt_translator=BillingTranslator(),
    pool=DUCKDB_POOL,
)
def billing_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: BillingWarehouse,
    config: DbtBuildConfig,
):
    """Seeds, staging, intermediate and mart models with their data tests (`dbt build`)."""
    with warehouse.dbt_environment():
        yield from dbt.cli(
            dbt_build_args(full_refresh=config.full_refresh), context=context
        ).stream()
