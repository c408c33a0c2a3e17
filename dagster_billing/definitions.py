"""The code location: every asset, check, job and resource of the billing pipeline."""

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_billing.defs.dbt.assets import billing_dbt_models
from dagster_billing.defs.dbt.project import DBT_EXECUTABLE, billing_project
from dagster_billing.defs.ingest.assets import raw_usage
from dagster_billing.defs.invoicing.checks import lines_sum_to_totals, nothing_lost
from dagster_billing.defs.invoicing.exports import invoice_csv_exports
from dagster_billing.defs.jobs import billing_pipeline
from dagster_billing.defs.pricing.assets import price_tables
from dagster_billing.defs.resources import BillingWarehouse

ASSETS = [price_tables, raw_usage, billing_dbt_models, invoice_csv_exports]
ASSET_CHECKS = [nothing_lost, lines_sum_to_totals]


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=billing_project, dbt_executable=DBT_EXECUTABLE)


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[billing_pipeline],
    resources={
        "warehouse": BillingWarehouse(data_dir=dg.EnvVar("BILLING_DATA_DIR")),
        "dbt": dbt_resource(),
    },
)
