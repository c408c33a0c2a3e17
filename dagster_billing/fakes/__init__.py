"""Local contract servers for NetSuite, Salesforce and Stripe (tests, demos, `billing fakes serve`).

They are small stateful implementations of the parts of each vendor API this project uses, and
they check what the vendor checks (auth, required fields, types, external-id upsert semantics,
idempotency, payload limits); each module cites its sources. They listen on 127.0.0.1 only,
Salesforce over HTTPS with a throwaway CA from trustme. Every server can inject 429/5xx/timeouts
(`FaultInjector`) and counts what it created, so tests assert on the destination's end state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from dagster_billing.fakes.netsuite import NetSuiteAccount, NetSuiteFake
from dagster_billing.fakes.salesforce import SalesforceFake, SalesforceOrg
from dagster_billing.fakes.server import ContractServer, FaultInjector, ServerThread
from dagster_billing.fakes.stripe import StripeAccount, StripeFake

__all__ = [
    "FaultInjector",
    "NetSuiteFake",
    "RunningFakes",
    "SalesforceFake",
    "StripeFake",
    "start_fakes",
]


@dataclass
class RunningFakes:
    netsuite: NetSuiteFake
    salesforce: SalesforceFake
    stripe: StripeFake
    servers: dict[str, ServerThread]
    ca_bundle: Path
    # With `start_fakes(persist=True)`: where each server's records are kept between runs.
    records_dir: Path | None = None

    @property
    def fakes(self) -> dict[str, ContractServer]:
        return {fake.name: fake for fake in (self.netsuite, self.salesforce, self.stripe)}

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def set_faults(self, **settings: Any) -> None:
        for fake in self.fakes.values():
            fake.faults.configure(**settings)

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset_all()

    def environment(self) -> dict[str, str]:
        """Environment variables the Dagster sync resources read, pointing at these servers."""
        ns, sf, st = self.netsuite.account, self.salesforce.org, self.stripe.account
        return {
            "NETSUITE_ACCOUNT_ID": ns.account_id,
            "NETSUITE_BASE_URL": self.urls["netsuite"],
            "NETSUITE_CONSUMER_KEY": ns.consumer_key,
            "NETSUITE_CONSUMER_SECRET": ns.consumer_secret,
            "NETSUITE_TOKEN_ID": ns.token_id,
            "NETSUITE_TOKEN_SECRET": ns.token_secret,
            "SALESFORCE_LOGIN_URL": self.urls["salesforce"],
            "SALESFORCE_CLIENT_ID": sf.client_id,
            "SALESFORCE_CLIENT_SECRET": sf.client_secret,
            "SALESFORCE_CA_BUNDLE": str(self.ca_bundle),
            "STRIPE_API_KEY": st.api_key,
            "STRIPE_API_BASE": self.urls["stripe"],
        }

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self.records_dir is not None:
            for fake in self.fakes.values():
                _write_atomically(_records_file(self.records_dir, fake), fake.dump_records())


def _records_file(records_dir: Path, fake: ContractServer) -> Path:
    return records_dir / f"{fake.name}.json"


def _write_atomically(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


def start_fakes(
    state_dir: Path,
    *,
    ports: dict[str, int] | None = None,
    fault_rate: float = 0.0,
    fault_seed: int = 0,
    timeout_delay: float = 3.0,
    persist: bool = False,
) -> RunningFakes:
    """Start the three servers on 127.0.0.1 (port 0 = any free port). The TLS certificate and the
    CA bundle clients must trust for Salesforce are written to `state_dir`. With `persist`, the
    servers hold what they held when they last stopped with `persist` in this `state_dir`
    (records, ids, idempotency keys, under `state_dir/records/`), as a vendor's system would
    between two syncs; tests start them empty."""
    ports = ports or {}
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_bundle = state_dir / "fake-salesforce-ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    server_pem = state_dir / "fake-salesforce-server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(server_pem)
    )

    def faults(kinds: tuple[str, ...], seed_offset: int) -> FaultInjector:
        return FaultInjector(
            rate=fault_rate, kinds=kinds, seed=fault_seed + seed_offset, timeout_delay=timeout_delay
        )

    netsuite = NetSuiteFake(NetSuiteAccount(), faults(("429", "500", "timeout"), 1))
    salesforce = SalesforceFake(SalesforceOrg(), faults(("limit", "500", "timeout"), 2))
    stripe = StripeFake(StripeAccount(), faults(("429", "429_should_retry", "500", "timeout"), 3))
    records_dir = state_dir / "records" if persist else None
    if records_dir is not None:
        records_dir.mkdir(exist_ok=True)
        for fake in (netsuite, salesforce, stripe):
            if (records := _records_file(records_dir, fake)).exists():
                fake.load_records(records.read_bytes())
    servers = {
        "netsuite": ServerThread(netsuite.app, port=ports.get("netsuite", 0)),
        "salesforce": ServerThread(
            salesforce.app, port=ports.get("salesforce", 0), certfile=str(server_pem)
        ),
        "stripe": ServerThread(stripe.app, port=ports.get("stripe", 0)),
    }
    started: list[ServerThread] = []
    try:
        for server in servers.values():
            started.append(server.start())
    except Exception:
        for server in started:
            server.stop()
        raise
    salesforce.instance_url = servers["salesforce"].url
    return RunningFakes(netsuite, salesforce, stripe, servers, ca_bundle, records_dir)
