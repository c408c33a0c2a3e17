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

defs = dg.Definitions(
    assets=[price_tables, raw_usage, billing_dbt_models, invoice_csv_exports],
    asset_checks=[nothing_lost, lines_sum_to_totals],
    jobs=[billing_pipeline],
    resources={
        "warehouse": BillingWarehouse(data_dir=dg.EnvVar("BILLING_DATA_DIR")),
        "dbt": DbtCliResource(project_dir=billing_project, dbt_executable=DBT_EXECUTABLE),
    },
)
