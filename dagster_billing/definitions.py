"""The code location: every asset, check, job, sensor and resource found under defs/."""

import dagster as dg

import dagster_billing.defs
from dagster_billing.paths import REPO_ROOT

defs = dg.components.load_defs(dagster_billing.defs, project_root=REPO_ROOT)


def pipeline_assets_and_checks() -> list:
    """Every asset and check except those that talk to the outside (reverse-ETL pushes and
    webhook delivery need destination credentials and endpoints): what in-process
    materializations (tests, `billing price`) run."""
    from dagster_billing.defs.sync.factory import is_push_asset

    assets = [
        a
        for a in defs.assets
        if not is_push_asset(a) and "webhooks" not in a.required_resource_keys
    ]
    return [*assets, *defs.asset_checks]


def in_process_job_selection(job_name: str) -> list[dg.AssetKey]:
    """The assets of job `job_name` that pipeline_assets_and_checks() holds."""
    held = {
        key
        for asset in pipeline_assets_and_checks()
        if isinstance(asset, dg.AssetsDefinition)
        for key in asset.keys
    }
    return sorted(defs.resolve_job_def(job_name).asset_layer.executable_asset_keys & held)
