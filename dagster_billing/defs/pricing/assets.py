from pathlib import Path

import dagster as dg

from dagster_billing.defs import groups
from dagster_billing.defs.dbt.translator import PRICE_PLANS_KEY
from dagster_billing.defs.resources import BillingWarehouse
from dagster_billing.pricing.plans import compile_plans


@dg.asset(key=PRICE_PLANS_KEY, group_name=groups.REFERENCE, kinds={"yaml", "csv"})
def price_tables(warehouse: BillingWarehouse) -> dg.MaterializeResult:
    """Validate plans/*.yaml and compile them to the typed price seeds (price_plans, price_charges,
    price_tiers) that dbt loads. An invalid plan fails here with file, path and reason."""
    counts = compile_plans(Path(warehouse.plans_dir), Path(warehouse.seeds_dir))
    return dg.MaterializeResult(
        metadata={f"{table}_rows": dg.MetadataValue.int(rows) for table, rows in counts.items()}
    )
