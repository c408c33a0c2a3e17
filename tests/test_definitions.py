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
    "intermediate/int_billing_segments",
    "intermediate/int_billing_periods",
    "intermediate/int_seat_days",
    "intermediate/int_charge_quantities",
    "intermediate/int_usage_transactions_rated",
    "intermediate/int_usage_rated",
    "intermediate/int_recurring_fees",
    "intermediate/int_invoice_charge_lines",
    "billing/fct_rated_usage",
    "billing/fct_invoice_lines",
    "billing/fct_invoices",
    "billing/fct_usage_event_outcomes",
    "exports/invoice_csv",
    "sync/sync_netsuite__customers",
    "sync/sync_netsuite__invoices",
    "sync/sync_salesforce__accounts",
    "sync/sync_salesforce__invoices",
    "sync/sync_stripe__customers",
    "sync/sync_stripe__invoice_items",
    "netsuite/customers",
    "netsuite/invoices",
    "salesforce/accounts",
    "salesforce/invoices",
    "stripe/customers",
    "stripe/invoice_items",
    "pricing/simulation",
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
        == pools["pricing__simulation"]
        == "duckdb"
    )


def test_reverse_etl_runs_in_its_own_job_with_warehouse_and_api_pools():
    defs, graph = _graph()
    pipeline = defs.resolve_job_def("billing_pipeline")
    sync_job = defs.resolve_job_def("billing_sync")
    assert not any(name.startswith(("netsuite__", "stripe__")) for name in pipeline.graph.node_dict)
    pools = {}
    for graph_node in sync_job.graph.node_dict.values():
        for name, node in graph_node.definition.node_dict.items():
            pools[name] = node.definition.pool
    assert pools["netsuite__invoices__load"] == pools["netsuite__invoices__record"] == "duckdb"
    assert (
        pools["netsuite__invoices__push"]
        == pools["netsuite__invoices__reconcile"]
        == "netsuite_api"
    )
    assert pools["salesforce__accounts__push"] == "salesforce_api"
    assert pools["stripe__invoice_items__push"] == "stripe_api"
    parents = {
        k.to_user_string()
        for k in graph.get(dg.AssetKey.from_user_string("netsuite/invoices")).parent_keys
    }
    assert parents == {"sync/sync_netsuite__invoices", "netsuite/customers"}
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {
        "netsuite/invoices:matches_warehouse",
        "salesforce/invoices:matches_warehouse",
        "stripe/invoice_items:matches_warehouse",
        "stripe/customers:all_rows_synced",
    } <= checks


def test_definitions_load_without_environment(monkeypatch):
    monkeypatch.delenv("BILLING_DATA_DIR", raising=False)
    defs, _ = _graph()
    assert defs.resolve_job_def("billing_pipeline") is not None
