"""Asset groups: the stages of the data flow, in the order the README draws them and
docs/concepts.md tells them. Every group name of the code location is defined here.

    reference ─┐
    landing ───┴─► usage ─► rating ─► drafts ─► ledger ─► billing ─┬─► revenue
                                                                  ├─► analytics
                                                                  ├─► exports
                                                                  └─► reverse_etl

Asset keys keep the warehouse schema as their prefix (raw/usage_events, intermediate/...,
billing/fct_invoices): the key says where a table is, the group says which stage makes it.
dbt models get their group from their folder (DBT_FOLDER_GROUPS), seeds are reference data.
"""

REFERENCE = "reference"
"""Price plans compiled from plans/*.yaml and the seeds: accounts, meters, credits, coupons."""
LANDING = "landing"
"""Landing files and API batches landed into raw/* tables, and their staging views."""
USAGE = "usage"
"""Each landed row classified (accepted, duplicate, quarantined: billing/fct_usage_event_outcomes),
deduplicated, rolled up."""
RATING = "rating"
"""Billing periods, quantities per charge, every price model rated (billing/fct_rated_usage);
draft-plan simulation."""
DRAFTS = "drafts"
"""Open invoices: corrections for late usage, coupons, credit draws, draft lines and totals."""
LEDGER = "ledger"
"""The append-only register of final invoices and credit notes (closed periods)."""
BILLING = "billing"
"""The billing marts people query: invoices, lines, credit notes and credits, daily usage,
alerts, the webhook outbox."""
REVENUE = "revenue"
"""Revenue by period and meter, MRR movements."""
ANALYTICS = "analytics"
"""The published read side: immutable snapshots of the marts for analysts, the API, the portal."""
EXPORTS = "exports"
"""What leaves for our own consumers: invoice CSV/PDF, usage CSV, webhooks."""
REVERSE_ETL = "reverse_etl"
"""The exact payloads for NetSuite, Salesforce and Stripe (sync/*) and the assets pushing them."""

FLOW = (
    REFERENCE,
    LANDING,
    USAGE,
    RATING,
    DRAFTS,
    LEDGER,
    BILLING,
    REVENUE,
    ANALYTICS,
    EXPORTS,
    REVERSE_ETL,
)

# dbt model folders (below models/) -> group; the longest matching prefix wins.
DBT_FOLDER_GROUPS: dict[tuple[str, ...], str] = {
    ("staging",): LANDING,
    ("intermediate", "usage"): USAGE,
    ("intermediate", "rating"): RATING,
    ("intermediate", "invoicing"): DRAFTS,
    ("marts", "ledger"): LEDGER,
    ("marts", "billing"): BILLING,
    ("marts", "revenue"): REVENUE,
    ("marts", "sync"): REVERSE_ETL,
}


def dbt_group(
    resource_type: str, folders: tuple[str, ...], schema: str, meta_group: str | None = None
) -> str:
    """The group of a dbt node: seeds are reference data; a model's folder names its stage,
    unless its `meta: {dagster: {group: ...}}` names another (a mart that is a stage's output,
    like billing/fct_rated_usage for rating). A folder missing from DBT_FOLDER_GROUPS falls back
    to the schema (and the test of the asset graph names it, so the new stage gets a place in
    FLOW and in docs/concepts.md)."""
    if meta_group:
        return meta_group
    if resource_type == "seed":
        return REFERENCE
    for length in range(len(folders), 0, -1):
        group = DBT_FOLDER_GROUPS.get(folders[:length])
        if group:
            return group
    return schema
