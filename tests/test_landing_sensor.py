"""The landing sensor: new files (from the API or dropped by hand) start one fast
rate_new_usage run, then one land_and_rate run over the same files; an event posted to the API
ends up rated and readable back through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import httpx
import orjson
import pytest
from click.testing import CliRunner

from dagster_billing.api.process import ServerProcess
from dagster_billing.cli import main
from dagster_billing.defs.ingest.sensors import (
    MAX_DRAFT_LAG_SECONDS,
    QUIET_SECONDS,
    landing_run_request,
    landing_sensor,
)
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
    [landing_op] = request.run_config["ops"].values()
    return landing_op["config"]["paths"]


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
        assert first.job_name == "rate_new_usage"
        names = paths_of(first)
        assert names[0] == "backfill.ndjson"
        assert len(names) == 3
        assert all(name.startswith("api/received_date=") for name in names[1:])
        assert all((warehouse.landing_dir / name).is_file() for name in names)

        # Nothing new, but not quiet for long enough yet: land_and_rate waits.
        waiting, cursor = evaluate(warehouse, cursor)
        assert isinstance(waiting, dg.SkipReason)

        # Quiet: the same files go through land_and_rate (tests, checks, drafts).
        later = datetime.now(UTC) + timedelta(seconds=QUIET_SECONDS)
        full, cursor = landing_run_request(warehouse, orjson.loads(cursor), now=later)
        assert full.job_name == "land_and_rate"
        assert paths_of(full) == names
        # Daily models rebuild the run's day and every day the new files' events fall on.
        assert full.partition_key == later.strftime("%Y-%m-%d")

        nothing, same_cursor = evaluate(warehouse, orjson.dumps(cursor).decode())
        assert isinstance(nothing, dg.SkipReason)

        post(server, key, [event("api-3")])
        (warehouse.landing_dir / "backfill.ndjson").write_bytes(
            orjson.dumps(event("dropped-2")) + b"\n"
        )
        second, _ = evaluate(warehouse, same_cursor or cursor)
    assert isinstance(second, dg.RunRequest)
    assert second.job_name == "rate_new_usage"
    assert second.run_key != first.run_key
    new = paths_of(second)
    assert new[0] == "backfill.ndjson"
    assert len(new) == 2 and new[1] not in names


def test_new_files_are_rated_first_and_drafts_follow_within_the_lag(tmp_path):
    warehouse = make_warehouse(tmp_path)
    warehouse.landing_dir.mkdir(parents=True)
    start = datetime(2026, 1, 20, 12, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    (warehouse.landing_dir / "a.ndjson").write_bytes(orjson.dumps(event("lag-1")))
    first, cursor = landing_run_request(warehouse, {}, now=start)
    assert first.job_name == "rate_new_usage" and paths_of(first) == ["a.ndjson"]
    assert landing_run_request(warehouse, cursor, now=at(QUIET_SECONDS - 1))[0] is None

    # More files before it is quiet: another fast run; the full run waits for both.
    (warehouse.landing_dir / "b.ndjson").write_bytes(orjson.dumps(event("lag-2")))
    second, cursor = landing_run_request(warehouse, cursor, now=at(QUIET_SECONDS - 1))
    assert second.job_name == "rate_new_usage" and paths_of(second) == ["b.ndjson"]

    # Files keep coming, but the oldest pending one has waited long enough: the full run.
    (warehouse.landing_dir / "c.ndjson").write_bytes(orjson.dumps(event("lag-3")))
    full, cursor = landing_run_request(warehouse, cursor, now=at(MAX_DRAFT_LAG_SECONDS))
    assert full.job_name == "land_and_rate"
    assert paths_of(full) == ["a.ndjson", "b.ndjson"]
    assert full.partition_key == "2026-01-20"
    assert full.run_key not in (first.run_key, second.run_key)

    # c.ndjson was not consumed by the full run's tick: it is the next fast run, and its own
    # full run comes once landing has been quiet.
    third, cursor = landing_run_request(warehouse, cursor, now=at(MAX_DRAFT_LAG_SECONDS))
    assert third.job_name == "rate_new_usage" and paths_of(third) == ["c.ndjson"]
    quiet = at(MAX_DRAFT_LAG_SECONDS + QUIET_SECONDS)
    last, cursor = landing_run_request(warehouse, cursor, now=quiet)
    assert last.job_name == "land_and_rate" and paths_of(last) == ["c.ndjson"]
    assert landing_run_request(warehouse, cursor, now=quiet)[0] is None


@pytest.mark.parametrize("job_name", ["rate_new_usage", "land_and_rate"])
def test_the_sensor_waits_while_a_run_is_active(tmp_path, job_name):
    warehouse = make_warehouse(tmp_path)
    warehouse.landing_dir.mkdir(parents=True)
    (warehouse.landing_dir / "a.ndjson").write_bytes(orjson.dumps(event("wait-1")))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(
        dg.DagsterRun(job_name=job_name, run_id="active", status=dg.DagsterRunStatus.STARTED)
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
        from dagster_billing.definitions import defs

        def read_usage() -> dict:
            return httpx.get(
                f"{server.url}/v1/accounts/acct_meridian/usage",
                params={"period": "2026-01"},
                headers=headers,
            ).json()

        def run(request: dg.RunRequest) -> dg.ExecuteInProcessResult:
            result = defs.resolve_job_def(request.job_name).execute_in_process(
                run_config=request.run_config,
                partition_key=request.partition_key,
                tags={"dagster/run_key": request.run_key},
            )
            assert result.success
            return result

        # The fast path: rated (no tests, no drafts), and recorded on the dbt assets themselves.
        fast, cursor = evaluate(warehouse)
        materialized = {
            event.asset_key.to_user_string()
            for event in run(fast).get_asset_materialization_events()
        }
        assert {
            "raw/usage_events",
            "billing/fct_rated_usage",
            "analytics/snapshot",
        } <= materialized
        assert "billing/fct_invoices" not in materialized
        assert rated_quantity() == Decimal("107.5")
        [api_requests] = [u for u in read_usage()["usage"] if u["meter_code"] == "api.requests"]
        assert Decimal(api_requests["quantity"]) == Decimal("107.5")

        # Then land_and_rate over the same file: nothing landed twice, drafts recalculated.
        later = datetime.now(UTC) + timedelta(seconds=QUIET_SECONDS)
        full, _ = landing_run_request(warehouse, orjson.loads(cursor), now=later)
        assert full.job_name == "land_and_rate"
        run(full)
        assert rated_quantity() == Decimal("107.5")
        assert query(warehouse, "select count(*) from raw.usage_events") == [(2,)]

        usage = read_usage()
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
        assert "rate:" in watched.output and " ok in " in watched.output
        assert rated_quantity() == Decimal("110")
