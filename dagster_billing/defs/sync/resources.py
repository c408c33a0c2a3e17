"""Destination resources for the reverse-ETL pushes: credentials from the environment (dg.EnvVar,
resolved at run launch: a missing secret fails the run before anything runs), endpoints
configurable so the same code talks to the vendors or to the local contract servers.

Optional, non-secret overrides are read at run time when not configured: NETSUITE_BASE_URL
(default: derived from the account id), NETSUITE_CONCURRENCY (reconciliation's reads at a time,
default 1), SALESFORCE_CA_BUNDLE (a PEM to trust instead of the system store), STRIPE_API_BASE
(default https://api.stripe.com).
"""

import os

import dagster as dg
from pydantic import Field

from dagster_billing.sync.netsuite import NetSuiteClient
from dagster_billing.sync.retry import RetryPolicy
from dagster_billing.sync.salesforce import SalesforceClient
from dagster_billing.sync.stripe_api import StripeApi

NETSUITE_POOL = "netsuite_api"
SALESFORCE_POOL = "salesforce_api"
STRIPE_POOL = "stripe_api"


class _HttpSettings(dg.ConfigurableResource):
    timeout_seconds: float = Field(default=60.0, description="Read/connect timeout per request.")
    max_attempts: int = Field(default=6, description="Tries per request (429, 5xx, timeouts).")
    backoff_initial_seconds: float = Field(
        default=0.5, description="First backoff (jittered, doubling)."
    )
    backoff_max_seconds: float = Field(default=30.0, description="Longest backoff between tries.")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.backoff_initial_seconds, self.backoff_max_seconds
        )


class NetSuiteResource(_HttpSettings):
    """SuiteTalk REST web services with token-based authentication (OAuth 1.0, HMAC-SHA256)."""

    account_id: str = Field(description="Account id, also the OAuth realm (e.g. 1234567_SB1).")
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str
    base_url: str | None = Field(
        default=None,
        description="https://<account>.suitetalk.api.netsuite.com unless set (or NETSUITE_BASE_URL).",
    )
    concurrency: int | None = Field(
        default=None,
        description="Reads at a time when reconciling (or NETSUITE_CONCURRENCY; default 1): at "
        "most the account's or the integration record's concurrency limit, less what other "
        "integrations use. Pushes are one at a time.",
    )

    def client(self) -> NetSuiteClient:
        return NetSuiteClient(
            account_id=self.account_id,
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            token_id=self.token_id,
            token_secret=self.token_secret,
            base_url=self.base_url or os.environ.get("NETSUITE_BASE_URL") or None,
            timeout_seconds=self.timeout_seconds,
            retry=self.retry_policy(),
            concurrency=self.concurrency or int(os.environ.get("NETSUITE_CONCURRENCY") or 1),
        )


class SalesforceResource(_HttpSettings):
    """Salesforce REST API: client-credentials token, then simple-salesforce."""

    login_url: str = Field(
        description="The org's My Domain URL, where /services/oauth2/token lives."
    )
    client_id: str
    client_secret: str
    api_version: str = "62.0"
    ca_bundle: str | None = Field(
        default=None,
        description="PEM bundle to verify TLS with (or SALESFORCE_CA_BUNDLE); default: system store.",
    )

    def client(self) -> SalesforceClient:
        return SalesforceClient(
            login_url=self.login_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            api_version=self.api_version,
            timeout_seconds=self.timeout_seconds,
            retry=self.retry_policy(),
            ca_bundle=self.ca_bundle or os.environ.get("SALESFORCE_CA_BUNDLE") or None,
        )


class StripeResource(_HttpSettings):
    """Stripe API through stripe-python's StripeClient."""

    api_key: str
    api_base: str | None = Field(
        default=None, description="https://api.stripe.com unless set (or STRIPE_API_BASE)."
    )

    def client(self) -> StripeApi:
        return StripeApi(
            api_key=self.api_key,
            api_base=self.api_base or os.environ.get("STRIPE_API_BASE") or "https://api.stripe.com",
            timeout_seconds=self.timeout_seconds,
            retry=self.retry_policy(),
        )


@dg.definitions
def sync_resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "netsuite": NetSuiteResource(
                account_id=dg.EnvVar("NETSUITE_ACCOUNT_ID"),
                consumer_key=dg.EnvVar("NETSUITE_CONSUMER_KEY"),
                consumer_secret=dg.EnvVar("NETSUITE_CONSUMER_SECRET"),
                token_id=dg.EnvVar("NETSUITE_TOKEN_ID"),
                token_secret=dg.EnvVar("NETSUITE_TOKEN_SECRET"),
            ),
            "salesforce": SalesforceResource(
                login_url=dg.EnvVar("SALESFORCE_LOGIN_URL"),
                client_id=dg.EnvVar("SALESFORCE_CLIENT_ID"),
                client_secret=dg.EnvVar("SALESFORCE_CLIENT_SECRET"),
            ),
            "stripe": StripeResource(api_key=dg.EnvVar("STRIPE_API_KEY")),
        }
    )
