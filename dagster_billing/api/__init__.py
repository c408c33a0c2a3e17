"""The ingestion API: `POST /v1/measurements` lands usage events as NDJSON files that the
pipeline picks up (see dagster_billing.defs.ingest.sensors)."""
