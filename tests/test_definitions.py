"""The asset graph as the Dagster UI shows it: keys, lineage, checks, pools."""

from __future__ import annotations

import dagster as dg

EXPECTED_ASSETS = {
    "plans/price_tables",
    "raw/usage_events",
    "raw/usage_quarantine",
    "raw/landed_files",
    "reference/accounts",
    "reference/currencies",
    "reference/meters",
    "reference/subscriptions",
    "reference/price_plans",
    "reference/price_charges",
    "reference/price_tiers",
    "staging/stg_raw__usage_events",
    "staging/stg_raw__usage_quarantine",
    "staging/stg_raw__landed_files",
    "intermediate/int_usage_events_classified",
    "intermediate/int_usage_events_deduped",
    "intermediate/int_usage_aggregated",
    "intermediate/int_billing_periods",
    "intermediate/int_usage_rated",
    "intermediate/int_invoice_charge_lines",
    "billing/fct_rated_usage",
    "billing/fct_invoice_lines",
    "billing/fct_invoices",
    "billing/fct_usage_event_outcomes",
    "exports/invoice_csv",
    "exports/api_snapshot",
}


def _graph():
    from dagster_billing.definitions import defs

    return defs, defs.resolve_asset_graph()


def test_every_asset_is_in_the_graph():
    _, graph = _graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == EXPECTED_ASSETS


def test_lineage_runs_from_plans_and_landing_to_exports():
    _, graph = _graph()

    def parents(key: str) -> set[str]:
        return {
            k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys
        }

    assert "plans/price_tables" in parents("reference/price_tiers")
    assert parents("staging/stg_raw__usage_events") == {"raw/usage_events"}
    assert {"billing/fct_invoices", "billing/fct_invoice_lines"} <= parents("exports/invoice_csv")


def test_invariants_are_asset_checks():
    _, graph = _graph()
    checks = {f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys}
    assert {
        "billing/fct_usage_event_outcomes:nothing_lost",
        "billing/fct_usage_event_outcomes:assert_nothing_lost",
        "billing/fct_invoices:lines_sum_to_totals",
        "billing/fct_invoices:assert_invoice_totals_equal_lines",
        "billing/fct_invoice_lines:assert_lines_are_rounded",
    } <= checks


def test_duckdb_writers_share_one_pool():
    defs, _ = _graph()
    job = defs.resolve_job_def("billing_pipeline")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert (
        pools["raw_usage"]
        == pools["billing_dbt_models"]
        == pools["exports__invoice_csv"]
        == "duckdb"
    )


def test_definitions_load_without_environment(monkeypatch):
    monkeypatch.delenv("BILLING_DATA_DIR", raising=False)
    defs, _ = _graph()
    assert defs.resolve_job_def("billing_pipeline") is not None
