"""Reverse ETL: push the payloads of the dbt `sync_*` models to NetSuite, Salesforce and Stripe.

- spec.py      which sync objects exist (read from `meta.sync` of the dbt models)
- ledger.py    the sync ledger in DuckDB: what was sent, when, with which result
- push.py      the rows to send and the per-row results, shared by every destination
- retry.py     backoff on 429 / 5xx / timeouts (tenacity)
- netsuite.py, salesforce.py, stripe_api.py   clients and push loops per destination
- reconcile.py destination vs warehouse, per invoice

The Dagster assets in dagster_billing/defs/sync are thin wrappers around these.
"""
