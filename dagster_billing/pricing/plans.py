"""Declarative price plans: YAML in plans/ -> validated models -> typed price tables (seed CSVs).

Layout of a plans directory:
  <code>.yaml or <code>/<version>.yaml   one plan version per file
  overrides/*.yaml                       per-account terms layered on a plan (PlanOverride)
  drafts/*.yaml                          draft versions for `billing simulate`; never compiled

Numbers are read as exact decimals (never floats), whether written as `0.0009` or `"0.0009"`.
Every price model compiles to the same price tables that the dbt rating models join against;
the schema of each field is documented in docs/plans.md and docs/plan.schema.json
(`billing plans schema`). The modules, in the order a plan goes through them:
  plan_types     numeric types and their limits
  plan_charges   the price models of charges
  plan_schema    a plan version and an account override; the JSON Schema
  plan_loader    reading, validating and windowing plan files (errors name file and path)
  price_tables   the compiler to seed CSVs
This module is the public entry point and re-exports what callers use.
"""

from __future__ import annotations

from dagster_billing.pricing.plan_charges import (
    PRICE_MODELS,
    Charge,
    DynamicCharge,
    FlatCharge,
    GraduatedCharge,
    GraduatedPercentageCharge,
    MatrixCharge,
    PackageCharge,
    PercentageCharge,
    PerUnitCharge,
    SeatCharge,
    Tier,
    TieredBlocksCharge,
    VolumeCharge,
)
from dagster_billing.pricing.plan_loader import (
    CompiledVersion,
    Reference,
    check_plan_file,
    describe_validation_error,
    load_override_file,
    load_plan_file,
    load_plans,
    load_yaml_exact,
    override_files,
    plan_files,
)
from dagster_billing.pricing.plan_schema import (
    Commitment,
    PlanOverride,
    PlanVersion,
    plan_json_schema,
    plan_json_schema_text,
)
from dagster_billing.pricing.plan_types import (
    ALL_DIMENSIONS,
    DRAFTS_DIR,
    MAX_DECIMAL_PLACES,
    OVERRIDE_SEPARATOR,
    OVERRIDES_DIR,
    PRICE_TABLES,
    PlanError,
)
from dagster_billing.pricing.price_tables import (
    CHARGE_COLUMNS,
    TABLE_COLUMNS,
    compile_plans,
    price_table_rows,
)

__all__ = [
    "ALL_DIMENSIONS",
    "CHARGE_COLUMNS",
    "DRAFTS_DIR",
    "MAX_DECIMAL_PLACES",
    "OVERRIDES_DIR",
    "OVERRIDE_SEPARATOR",
    "PRICE_MODELS",
    "PRICE_TABLES",
    "TABLE_COLUMNS",
    "Charge",
    "Commitment",
    "CompiledVersion",
    "DynamicCharge",
    "FlatCharge",
    "GraduatedCharge",
    "GraduatedPercentageCharge",
    "MatrixCharge",
    "PackageCharge",
    "PerUnitCharge",
    "PercentageCharge",
    "PlanError",
    "PlanOverride",
    "PlanVersion",
    "Reference",
    "SeatCharge",
    "Tier",
    "TieredBlocksCharge",
    "VolumeCharge",
    "check_plan_file",
    "compile_plans",
    "describe_validation_error",
    "load_override_file",
    "load_plan_file",
    "load_plans",
    "load_yaml_exact",
    "override_files",
    "plan_files",
    "plan_json_schema",
    "plan_json_schema_text",
    "price_table_rows",
]
