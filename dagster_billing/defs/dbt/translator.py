"""One translator for every dbt node: keys, groups, check descriptions and extra lineage from
folders and meta."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from dagster_billing.defs.dbt.partitions import BILLING_PERIOD_PARTITIONS, USAGE_DAY_PARTITIONS
from dagster_billing.defs.groups import dbt_group

USAGE_DAY_TAG = "partition_day"
BILLING_PERIOD_TAG = "partition_billing_period"

PRICE_PLANS_KEY = dg.AssetKey(["plans", "price_tables"])

# Data tests that re-read every landed row whatever a run added (the raw keys' `unique`): no
# asset checks, and Dagster's builds leave them out (defs/dbt/assets.py); `dbt test --select
# tag:audit` runs them (decision 91).
AUDIT_TAG = "audit"


class BillingTranslator(DagsterDbtTranslator):
    """Models and seeds are keyed <schema>/<name> (reference/meters, billing/fct_invoices), so the
    asset graph reads like the warehouse; sources keep dagster-dbt's <source>/<table>
    (raw/usage_events), which is the key of the landing asset that writes them. Groups are the
    stages of the data flow (defs/groups.py), from the model's folder.

    Every root of the dbt graph (seeds, and models that read only sources) depends on the plan
    compiler: it writes the price tables into the seed directory dbt parses, so no dbt invocation
    can run before it (seeds marked `meta: {compiled_from_plans: true}` are its output). This
    also lets Dagster run the roots in one dbt invocation after landing and compiling.

    Models tagged partition_day are partitioned by UTC event day, those tagged
    partition_billing_period by billing period (the ledger); the rest are unpartitioned. They are
    one asset set (defs/dbt/assets.py), so a run builds what it selected in one dbt invocation.

    Every dbt data test but those tagged audit is an asset check with a description
    (describe_test); tests on the raw sources are checks of the landing asset's tables, not
    observations."""

    def __init__(self) -> None:
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True, enable_source_tests_as_checks=True
            )
        )

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
            group_name=dbt_group(
                props["resource_type"],
                tuple(props["fqn"][1:-1]),
                schema,
                props["config"].get("meta", {}).get("dagster", {}).get("group"),
            ),
            deps=[*spec.deps, *extra_deps],
        )

    def get_partitions_def(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.PartitionsDefinition | None:
        tags = dbt_resource_props.get("tags", [])
        if USAGE_DAY_TAG in tags:
            return USAGE_DAY_PARTITIONS
        if BILLING_PERIOD_TAG in tags:
            return BILLING_PERIOD_PARTITIONS
        return None

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: Any,
    ) -> dg.AssetCheckSpec | None:
        if AUDIT_TAG in manifest["nodes"][unique_id].get("tags", []):
            return None
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=describe_test(manifest["nodes"][unique_id]),
            additional_deps=spec.additional_deps,
            blocking=spec.blocking,
            metadata=spec.metadata,
        )


def describe_test(test: Mapping[str, Any]) -> str:
    """What a dbt data test asserts, in words: its YAML `description` (or dagster-dbt's
    `meta.description`) when it has one; for a singular test, the comment its SQL opens with; for
    a generic test, a sentence from the test and its arguments."""
    given = test.get("description") or test.get("config", {}).get("meta", {}).get("description")
    if given:
        return given
    metadata = test.get("test_metadata")
    if not metadata:
        return _leading_comment(test.get("raw_code", "")) or test["name"]
    kwargs = metadata.get("kwargs", {})
    column = f"`{kwargs['column_name']}`" if kwargs.get("column_name") else "the row"
    name = metadata["name"]
    if name == "unique":
        return f"{column} is unique."
    if name == "not_null":
        return f"{column} is never null."
    if name == "table_rules":
        return _describe_table_rules(kwargs)
    if name == "accepted_values":
        values = ", ".join(f"`{value}`" for value in kwargs.get("values", []))
        return f"{column} is one of {values}."
    if name == "relationships":
        target = re.sub(r"""^(?:ref|source)\((.*)\)$""", r"\1", kwargs.get("to", ""))
        target = target.replace("'", "").replace('"', "").replace(", ", ".")
        return f"Every {column} refers to `{target}.{kwargs.get('field')}`."
    if name == "unique_by_arrival":
        return (
            f"{column} is unique (in a build, the keys that build added are looked up against "
            "the whole table)."
        )
    arguments = ", ".join(f"{key}={value}" for key, value in kwargs.items() if key != "model")
    return f"{name}({arguments})"


def _describe_table_rules(kwargs: Mapping[str, Any]) -> str:
    """The rules of one `table_rules` test (tests/generic/table_rules.sql), one sentence each."""

    def listed(columns: Sequence[str]) -> str:
        *first, last = [f"`{c}`" for c in columns]
        return f"{', '.join(first)} and {last}" if first else last

    sentences = []
    if kwargs.get("primary_key"):
        sentences.append(f"`{kwargs['primary_key']}` is never null and unique.")
    unique = kwargs.get("unique") or []
    if unique:
        sentences.append(
            f"{listed(unique)} are each unique." if len(unique) > 1 else f"`{unique[0]}` is unique."
        )
    not_null = kwargs.get("not_null") or []
    if not_null:
        verb = "are" if len(not_null) > 1 else "is"
        sentences.append(f"{listed(not_null)} {verb} never null.")
    for column, values in (kwargs.get("accepted_values") or {}).items():
        sentences.append(f"`{column}` is one of {', '.join(f'`{v}`' for v in values)}.")
    for columns in kwargs.get("unique_combinations") or []:
        sentences.append(f"One row per {', '.join(f'`{c}`' for c in columns)}.")
    return " ".join(sentences)


def _leading_comment(sql: str) -> str:
    """The `--` comment lines a singular test's SQL starts with (after its config block)."""
    lines = []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("{{") and not lines:
            continue
        if not stripped.startswith("--"):
            if lines or stripped:
                break
            continue
        lines.append(stripped.removeprefix("--").strip())
    return " ".join(lines)
