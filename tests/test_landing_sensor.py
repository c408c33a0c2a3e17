"""The landing sensor: new files (from the API or dropped by hand) start one land_and_rate run,
and an event posted to the API ends up rated and readable back through the API."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import httpx
import orjson
import pytest
from click.testing import CliRunner

from dagster_billing.api.process import ServerProcess
from dagster_billing.cli import main
from dagster_billing.defs.ingest.sensors import landing_sensor
from tests.api_helpers import TS, create_key, event
from tests.conftest import make_warehouse, query, run_pipeline


def evaluate(warehouse, cursor=None):
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"warehouse": warehouse},
    )
    return landing_sensor(context), context.cursor


def post(server, key, body):
    response = httpx.post(
        f"{server.url}/v1/measurements",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def paths_of(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["raw_usage"]["config"]["paths"]


def test_each_new_file_is_named_in_exactly_one_run_request(tmp_path):
    warehouse = make_warehouse(tmp_path)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    warehouse.landing_dir.mkdir(parents=True, exist_ok=True)
    (warehouse.landing_dir / "backfill.ndjson").write_bytes(orjson.dumps(event("dropped-1")))
    with ServerProcess(warehouse.root) as server:
        post(server, key, [event("api-1")])
        post(server, key, [event("api-2")])
        first, cursor = evaluate(warehouse)
        assert isinstance(first, dg.RunRequest)
        names = paths_of(first)
        assert names[0] == "backfill.ndjson"
        assert len(names) == 3
        assert all(name.startswith("api/received_date=") for name in names[1:])
        assert all((warehouse.landing_dir / name).is_file() for name in names)

        nothing, same_cursor = evaluate(warehouse, cursor)
        assert isinstance(nothing, dg.SkipReason)

        post(server, key, [event("api-3")])
        (warehouse.landing_dir / "backfill.ndjson").write_bytes(
            orjson.dumps(event("dropped-2")) + b"\n"
        )
        second, _ = evaluate(warehouse, same_cursor or cursor)
    assert isinstance(second, dg.RunRequest)
    assert second.run_key != first.run_key
    new = paths_of(second)
    assert new[0] == "backfill.ndjson"
    assert len(new) == 2 and new[1] not in names


def test_the_sensor_waits_while_a_run_is_active(tmp_path):
    warehouse = make_warehouse(tmp_path)
    warehouse.landing_dir.mkdir(parents=True)
    (warehouse.landing_dir / "a.ndjson").write_bytes(orjson.dumps(event("wait-1")))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(
        dg.DagsterRun(job_name="land_and_rate", run_id="active", status=dg.DagsterRunStatus.STARTED)
    )
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    assert isinstance(landing_sensor(context), dg.SkipReason)
    assert context.cursor is None


@pytest.mark.slow
def test_a_posted_event_is_rated_and_read_back(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    warehouse = make_warehouse(tmp_path)
    monkeypatch.setenv("BILLING_DATA_DIR", str(warehouse.root))
    warehouse.landing_dir.mkdir(parents=True)
    (warehouse.landing_dir / "history.ndjson").write_bytes(
        orjson.dumps(event("history-1", value=100)) + b"\n"
    )
    run_pipeline(warehouse)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    headers = {"Authorization": f"Bearer {key}"}

    def rated_quantity() -> Decimal:
        [(quantity,)] = query(
            warehouse,
            """
            select quantity from billing.fct_rated_usage
            where account_id = 'acct_meridian' and meter_code = 'api.requests'
              and period_start = '2026-01-01'
            """,
        )
        return quantity

    assert rated_quantity() == 100
    with ServerProcess(warehouse.root) as server:
        post(server, key, [event("live-1", value="7.5", ts=TS)])
        request, _ = evaluate(warehouse)
        from dagster_billing.definitions import defs

        result = defs.resolve_job_def("land_and_rate").execute_in_process(
            run_config=request.run_config, tags={"dagster/run_key": request.run_key}
        )
        assert result.success
        assert rated_quantity() == Decimal("107.5")

        usage = httpx.get(
            f"{server.url}/v1/accounts/acct_meridian/usage",
            params={"period": "2026-01"},
            headers=headers,
        ).json()
        [api_requests] = [u for u in usage["usage"] if u["meter_code"] == "api.requests"]
        assert Decimal(api_requests["quantity"]) == Decimal("107.5")
        assert usage["period"] == {"start": "2026-01-01", "end": "2026-02-01"}

        estimate = httpx.get(
            f"{server.url}/v1/accounts/acct_meridian/estimate",
            params={"period": "2026-01"},
            headers=headers,
        ).json()
        [(total, lines)] = query(
            warehouse,
            """
            select total, (select count(*) from billing.fct_invoice_lines l where l.invoice_id = i.invoice_id)
            from billing.fct_invoices i
            where account_id = 'acct_meridian' and period_start = '2026-01-01'
            """,
        )
        assert Decimal(estimate["invoice"]["total"]) == total
        assert len(estimate["invoice"]["lines"]) == lines
        assert sum(Decimal(line["amount"]) for line in estimate["invoice"]["lines"]) == total

        # The daemon-less loop does the same: `billing watch --once`.
        post(server, key, [event("live-2", value="2.5", ts=TS)])
        watched = CliRunner().invoke(main, ["watch", "--once", "--data-dir", str(warehouse.root)])
        assert watched.exit_code == 0, watched.output
        assert " ok in " in watched.output
        assert rated_quantity() == Decimal("110")
