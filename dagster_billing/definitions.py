"""The code location: every asset, check, job, sensor and resource found under defs/."""

import dagster as dg

import dagster_billing.defs
from dagster_billing.paths import REPO_ROOT

defs = dg.components.load_defs(dagster_billing.defs, project_root=REPO_ROOT)


def pipeline_assets_and_checks() -> list:
    """Every asset and check except the reverse-ETL pushes, which need destination credentials:
    what `billing_pipeline` runs, for in-process materializations (tests, `billing price`)."""
    from dagster_billing.defs.sync.factory import REVERSE_ETL_GROUP

    assets = [a for a in defs.assets if REVERSE_ETL_GROUP not in set(a.group_names_by_key.values())]
    return [*assets, *defs.asset_checks]
