"""One translator for every dbt node: keys, groups and extra lineage from folders and meta."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

PRICE_PLANS_KEY = dg.AssetKey(["plans", "price_tables"])


class BillingTranslator(DagsterDbtTranslator):
    """Models and seeds are keyed <schema>/<name> (reference/meters, billing/fct_invoices), so the
    asset graph reads like the warehouse; sources keep dagster-dbt's <source>/<table>
    (raw/usage_events), which is the key of the landing asset that writes them.

    Every root of the dbt graph (seeds, and models that read only sources) depends on the plan
    compiler: it writes the price tables into the seed directory dbt parses, so no dbt invocation
    can run before it (seeds marked `meta: {compiled_from_plans: true}` are its output). This
    also lets Dagster run the roots in one dbt invocation after landing and compiling."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        schema = props["config"].get("schema") or props["schema"]
        extra_deps = []
        parents = props.get("depends_on", {}).get("nodes", [])
        if all(parent.startswith("source.") for parent in parents):
            extra_deps.append(dg.AssetDep(PRICE_PLANS_KEY))
        return spec.replace_attributes(
            key=dg.AssetKey([schema, props["name"]]),
            group_name=schema,
            deps=[*spec.deps, *extra_deps],
        )
