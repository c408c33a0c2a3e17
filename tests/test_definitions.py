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
    "intermediate/int_seat_events",
    "intermediate/int_seat_holdings",
    "intermediate/int_seat_days",
    "intermediate/int_charge_dimension_matches",
    "intermediate/int_charge_quantities",
    "intermediate/int_usage_transactions_rated",
    "intermediate/int_usage_rated_tiers",
    "intermediate/int_usage_prorated_rated",
    "intermediate/int_usage_event_amounts",
    "intermediate/int_usage_instant_rated",
    "intermediate/int_usage_rated",
    "intermediate/int_recurring_fees",
    "intermediate/int_invoice_priced_lines",
    "intermediate/int_invoice_charge_lines",
    "billing/fct_rated_usage",
    "billing/fct_invoice_lines",
    "billing/fct_invoices",
    "billing/fct_usage_event_outcomes",
    "exports/invoice_csv",
    "sync/sync_netsuite__customers",
    "sync/sync_netsuite__invoices",
    "sync/sync_netsuite__credit_memos",
    "sync/sync_salesforce__accounts",
    "sync/sync_salesforce__invoices",
    "sync/sync_stripe__customers",
    "sync/sync_stripe__invoice_items",
    "netsuite/customers",
    "netsuite/invoices",
    "netsuite/credit_memos",
    "salesforce/accounts",
    "salesforce/invoices",
    "stripe/customers",
    "stripe/invoice_items",
    "pricing/simulation",
    "analytics/snapshot",
    # Billing lifecycle.
    "reference/credit_grants",
    "reference/coupons",
    "reference/issuers",
    "reference/account_issuers",
    "reference/usage_thresholds",
    "reference/usage_quotas",
    "reference/billing_cycles",
    "intermediate/int_usage_daily",
    "intermediate/int_usage_daily_unique_values",
    "intermediate/int_usage_hourly",
    "intermediate/int_invoice_open_periods",
    "intermediate/int_invoice_corrections",
    "intermediate/int_invoice_draft_charges",
    "intermediate/int_invoice_discounts",
    "intermediate/int_invoice_instruments",
    "intermediate/int_invoice_draws",
    "intermediate/int_invoice_draft_lines",
    "intermediate/int_invoice_drafts",
    "intermediate/int_invoice_draft_line_tiers",
    "intermediate/int_ledger_proposals",
    "ledger/ledger_document_lines",
    "ledger/ledger_invoice_line_tiers",
    "billing/fct_invoice_line_tiers",
    "billing/fct_credit_notes",
    "billing/fct_credit_note_lines",
    "billing/fct_credit_movements",
    "billing/fct_credit_balances",
    "billing/fct_usage_alerts",
    "billing/fct_usage_quotas",
    "billing/fct_usage_daily",
    "billing/fct_usage_daily_by_dimension",
    "billing/fct_usage_hourly",
    "billing/fct_usage_hourly_by_dimension",
    "billing/fct_usage_quarantine",
    "billing/fct_usage_outcome_counts",
    "billing/fct_webhook_events",
    "revenue/fct_revenue_by_period",
    "revenue/fct_revenue_by_meter",
    "revenue/fct_mrr",
    "exports/usage_csv",
    "exports/invoice_pdf",
    "webhooks/deliveries",
    # Finance documents, tax, payments and receivables (docs/finance.md).
    "reference/account_billing_profiles",
    "reference/tax_rates",
    "intermediate/int_invoice_parties",
    "intermediate/int_invoice_taxes",
    "billing/fct_invoice_payments",
    "billing/fct_receivables_aging",
    "sync/sync_stripe__invoices",
    "sync/sync_salesforce__invoice_payments",
    "stripe/invoices",
    "salesforce/invoice_payments",
    "payments/stripe_invoice_status",
    "sync/sync_netsuite__customer_payments",
    "netsuite/customer_payments",
}


def _parents(graph, key: str) -> set[str]:
    return {k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}


def _graph():
    from dagster_billing.definitions import defs

    return defs, defs.resolve_asset_graph()


def test_every_asset_is_in_the_graph():
    _, graph = _graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == EXPECTED_ASSETS


def test_lineage_runs_from_plans_and_landing_to_exports():
    _, graph = _graph()

    def parents(key: str) -> set[str]:
        return _parents(graph, key)

    assert "plans/price_tables" in parents("reference/price_tiers")
    # Roots of the dbt graph also wait for the plan compiler (dbt parses the price tables).
    # Staging reads the rows of committed landing batches: the events and the ledger.
    assert parents("staging/stg_raw__usage_events") == {
        "raw/usage_events",
        "raw/landed_files",
        "plans/price_tables",
    }
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
        "billing/fct_invoices:assert_invoice_totals_are_lines_plus_tax",
        "billing/fct_receivables_aging:assert_receivables_aging_adds_up",
        "payments/stripe_invoice_status:invoices_finalized",
    } <= checks


def test_duckdb_writers_share_one_pool():
    defs, _ = _graph()
    for job_name in ("billing_pipeline", "close_billing_period", "deliver_webhooks"):
        job = defs.resolve_job_def(job_name)
        writers = {
            node.name: node.definition.pool
            for node in job.graph.node_dict.values()
            # The plan compiler writes CSV files only; checks read with their own pool setting.
            if node.name != "plans__price_tables"
            and not node.name.endswith(("nothing_lost", "lines_sum_to_totals"))
        }
        assert writers and set(writers.values()) == {"duckdb"}, (job_name, writers)


def test_usage_is_partitioned_by_day_and_the_ledger_by_billing_period():
    _, graph = _graph()

    def partitions(key: str):
        return graph.get(dg.AssetKey.from_user_string(key)).partitions_def

    daily = partitions("intermediate/int_usage_daily")
    monthly = partitions("ledger/ledger_document_lines")
    assert isinstance(daily, dg.DailyPartitionsDefinition)
    assert isinstance(monthly, dg.MonthlyPartitionsDefinition)
    assert partitions("intermediate/int_usage_aggregated") == daily
    assert partitions("intermediate/int_usage_hourly") == daily
    assert partitions("ledger/ledger_invoice_line_tiers") == monthly
    # Landing is by file, invoices and marts are recomputed every run: unpartitioned.
    for key in (
        "raw/usage_events",
        "intermediate/int_usage_events_classified",
        "billing/fct_invoices",
    ):
        assert partitions(key) is None, key
    for key in ("intermediate/int_usage_daily", "ledger/ledger_document_lines"):
        policy = graph.get(dg.AssetKey.from_user_string(key)).backfill_policy
        assert policy == dg.BackfillPolicy.single_run(), key


def test_jobs_split_by_partitions_definition():
    defs, _ = _graph()
    daily = defs.resolve_job_def("billing_pipeline")
    close = defs.resolve_job_def("close_billing_period")
    daily_keys = {k.to_user_string() for k in daily.asset_layer.executable_asset_keys}
    close_keys = {k.to_user_string() for k in close.asset_layer.executable_asset_keys}
    assert {
        "raw/usage_events",
        "intermediate/int_usage_daily",
        "billing/fct_invoices",
    } <= daily_keys
    assert not {"ledger/ledger_document_lines", "webhooks/deliveries"} & daily_keys
    assert {
        "ledger/ledger_document_lines",
        "billing/fct_invoices",
        "exports/invoice_pdf",
    } <= close_keys
    assert not {"intermediate/int_usage_daily", "raw/usage_events"} & close_keys
    schedules = {schedule.name for schedule in defs.schedules}
    assert {"continuous_rating", "period_close", "webhook_delivery"} <= schedules


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
    assert _parents(graph, "netsuite/invoices") == {
        "sync/sync_netsuite__invoices",
        "netsuite/customers",
    }
    # A credit memo waits for its customer and for the invoice it credits; so does a customer
    # payment (a paid invoice's status in NetSuite) for the invoice it is applied to.
    for kind in ("credit_memos", "customer_payments"):
        assert _parents(graph, f"netsuite/{kind}") == {
            f"sync/sync_netsuite__{kind}",
            "netsuite/customers",
            "netsuite/invoices",
        }
    assert {"billing/fct_credit_notes", "billing/fct_credit_note_lines"} <= _parents(
        graph, "sync/sync_netsuite__credit_memos"
    )
    assert "billing/fct_invoice_payments" in _parents(
        graph, "sync/sync_netsuite__customer_payments"
    )
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {
        "netsuite/invoices:matches_warehouse",
        "netsuite/credit_memos:matches_warehouse",
        "netsuite/credit_memos:all_rows_synced",
        "netsuite/customer_payments:matches_warehouse",
        "salesforce/invoices:matches_warehouse",
        "stripe/invoice_items:matches_warehouse",
        "stripe/customers:all_rows_synced",
    } <= checks


def test_definitions_load_without_environment(monkeypatch):
    monkeypatch.delenv("BILLING_DATA_DIR", raising=False)
    defs, _ = _graph()
    assert defs.resolve_job_def("billing_pipeline") is not None


def test_groups_are_the_stages_of_the_data_flow():
    from dagster_billing.defs.groups import FLOW

    _, graph = _graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert set(groups) == set(FLOW), "a new group: add it to defs/groups.py and docs/concepts.md"
    assert {"raw/usage_events", "staging/stg_raw__usage_events"} <= groups["landing"]
    assert {"intermediate/int_usage_events_deduped", "billing/fct_usage_event_outcomes"} <= (
        groups["usage"]
    )
    assert {"intermediate/int_usage_rated", "billing/fct_rated_usage", "pricing/simulation"} <= (
        groups["rating"]
    )
    assert "intermediate/int_invoice_drafts" in groups["drafts"]
    assert {"sync/sync_netsuite__invoices", "netsuite/invoices"} <= groups["reverse_etl"]
    assert {"exports/invoice_pdf", "webhooks/deliveries"} <= groups["exports"]


def test_sync_job_holds_the_pushes_and_the_pipeline_builds_their_payloads():
    defs, _ = _graph()
    sync_keys = {
        k.to_user_string()
        for k in defs.resolve_job_def("billing_sync").asset_layer.executable_asset_keys
    }
    daily_keys = {
        k.to_user_string()
        for k in defs.resolve_job_def("billing_pipeline").asset_layer.executable_asset_keys
    }
    assert sync_keys == {
        key for key in EXPECTED_ASSETS if key.split("/")[0] in ("netsuite", "salesforce", "stripe")
    } | {"payments/stripe_invoice_status"}
    assert "sync/sync_netsuite__invoices" in daily_keys


def test_every_dbt_test_is_a_described_asset_check():
    import json

    from dagster_billing.defs.dbt.project import billing_project
    from dagster_billing.defs.dbt.translator import AUDIT_TAG

    _, graph = _graph()
    manifest = json.loads(billing_project.manifest_path.read_text())
    tests = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "test"}
    audits = {name for name, test in tests.items() if AUDIT_TAG in test["tags"]}
    specs = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    # Singular tests reading several models (and tests on the raw sources) are checks too; the
    # audit tests (every landed row, whatever a run added: decision 91) are not.
    assert set(tests) - audits <= set(specs), sorted(set(tests) - audits - set(specs))
    assert audits == {
        "source_unique_raw_usage_events_raw_event_key",
        "source_unique_raw_usage_quarantine_raw_event_key",
    }
    assert not audits & set(specs)
    assert specs["assert_credit_grants_never_overdrawn"].asset_key == dg.AssetKey(
        ["billing", "fct_invoice_lines"]
    )
    undescribed = sorted(name for name, spec in specs.items() if not spec.description)
    assert not undescribed
    described = {name: spec.description for name, spec in specs.items()}
    assert described["assert_nothing_lost"].startswith("raw = accepted + duplicates + quarantined")
    # A table's column rules are one check (decision 108), described rule by rule.
    assert described["table_rules_fct_invoices"] == (
        "`invoice_id` is never null and unique. `invoice_number` is unique. `status`, "
        "`account_id` and `total` are never null. `status` is one of `draft`, `final`."
    )
    assert not any(
        name.startswith(("primary_key_", "not_null_columns_", "unique_combination_"))
        for name in specs
    )
    assert (
        described["relationships_fct_invoices_account_id__account_id__ref_accounts_"]
        == "Every `account_id` refers to `accounts.account_id`."
    )


def test_table_rules_is_described_rule_by_rule():
    from dagster_billing.defs.dbt.translator import describe_test

    def described(**rules) -> str:
        kwargs = {**rules, "model": "{{ get_where_subquery(ref('m')) }}"}
        return describe_test({"test_metadata": {"name": "table_rules", "kwargs": kwargs}})

    assert described(not_null=["a"]) == "`a` is never null."
    assert described(not_null=["a", "b"]) == "`a` and `b` are never null."
    assert described(not_null=["a", "b", "c"]) == "`a`, `b` and `c` are never null."
    assert described(unique=["a"]) == "`a` is unique."
    assert described(unique=["a", "b"]) == "`a` and `b` are each unique."
    assert described(unique_combinations=[["a", "b"], ["c", "d"]]) == (
        "One row per `a`, `b`. One row per `c`, `d`."
    )
    assert described(
        primary_key="id",
        not_null=["status", "total"],
        unique=["number"],
        unique_combinations=[["a", "b"]],
        accepted_values={"status": ["draft", "final"], "digits": [0, 2]},
    ) == (
        "`id` is never null and unique. `number` is unique. `status` and `total` are never "
        "null. `status` is one of `draft`, `final`. `digits` is one of `0`, `2`. One row per "
        "`a`, `b`."
    )
