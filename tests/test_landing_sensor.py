"""The landing sensor: new files (from the API or dropped by hand) start one fast
rate_new_usage run, then one land_and_rate run over the same files; an event posted to the API
ends up rated and readable back through the API."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import httpx
import orjson
import pytest
from click.testing import CliRunner

from dagster_billing.api.process import ServerProcess
from dagster_billing.cli import main
from dagster_billing.defs.ingest.assets import land
from dagster_billing.defs.ingest.sensors import (
    MAX_DRAFT_LAG_SECONDS,
    MAX_RETRY_SECONDS,
    QUIET_SECONDS,
    RETRY_SECONDS,
    landing_run_request,
    landing_sensor,
)
from tests.api_helpers import TS, create_key, event
from tests.conftest import make_warehouse, query, run_pipeline


def evaluate(warehouse, cursor=None, instance=None):
    context = dg.build_sensor_context(
        instance=instance or dg.DagsterInstance.ephemeral(),
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


def drop(warehouse, name: str, *events: dict, at: datetime | None = None) -> None:
    """A hand-dropped landing file, last written at `at` (default: long enough ago to be read)."""
    path = warehouse.landing_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    written = (at or datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    os.utime(path, (written, written))


def seconds_after(start: datetime):
    """at(s): the time `s` seconds after `start` (the sensor's clock in a test)."""
    return lambda seconds: start + timedelta(seconds=seconds)


def land_now(warehouse) -> None:
    """What the requested run's landing step does."""
    land(warehouse, [], logging.getLogger("test"))


def test_each_new_file_is_named_in_exactly_one_run_request(tmp_path):
    warehouse = make_warehouse(tmp_path)
    key = create_key(warehouse.root, "acme", "acct_meridian")
    drop(warehouse, "backfill.ndjson", event("dropped-1"))
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
        assert first.tags["billing/api_events"] == "2"
        land_now(warehouse)

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
        # Rewritten just now: not read until it has been unchanged for the quiet time.
        drop(warehouse, "backfill.ndjson", event("dropped-2"), at=datetime.now(UTC))
        early, _ = landing_run_request(warehouse, orjson.loads(same_cursor))
        [api_file] = paths_of(early)
        assert api_file.startswith("api/") and api_file not in names
        second, _ = landing_run_request(
            warehouse, orjson.loads(same_cursor), now=datetime.now(UTC) + timedelta(seconds=2)
        )
    assert isinstance(second, dg.RunRequest)
    assert second.job_name == "rate_new_usage"
    assert second.run_key != first.run_key
    new = paths_of(second)
    assert new[0] == "backfill.ndjson"
    assert len(new) == 2 and new[1] not in names


def test_new_files_are_rated_first_and_drafts_follow_within_the_lag(tmp_path):
    warehouse = make_warehouse(tmp_path)
    start = datetime(2026, 1, 20, 12, tzinfo=UTC)
    at = seconds_after(start)

    drop(warehouse, "a.ndjson", event("lag-1"), at=at(-5))
    first, cursor = landing_run_request(warehouse, {}, now=start)
    assert first.job_name == "rate_new_usage" and paths_of(first) == ["a.ndjson"]
    land_now(warehouse)
    assert landing_run_request(warehouse, cursor, now=at(QUIET_SECONDS - 1))[0] is None

    # More files before it is quiet: another fast run; the full run waits for both.
    drop(warehouse, "b.ndjson", event("lag-2"), at=at(QUIET_SECONDS - 5))
    second, cursor = landing_run_request(warehouse, cursor, now=at(QUIET_SECONDS - 1))
    assert second.job_name == "rate_new_usage" and paths_of(second) == ["b.ndjson"]
    land_now(warehouse)

    # Files keep coming, but the oldest pending one has waited long enough: the full run.
    drop(warehouse, "c.ndjson", event("lag-3"), at=at(MAX_DRAFT_LAG_SECONDS - 5))
    full, cursor = landing_run_request(warehouse, cursor, now=at(MAX_DRAFT_LAG_SECONDS))
    assert full.job_name == "land_and_rate"
    assert paths_of(full) == ["a.ndjson", "b.ndjson"]
    assert full.partition_key == "2026-01-20"
    assert full.run_key not in (first.run_key, second.run_key)

    # c.ndjson was not consumed by the full run's tick: it is the next fast run, and its own
    # full run comes once landing has been quiet.
    third, cursor = landing_run_request(warehouse, cursor, now=at(MAX_DRAFT_LAG_SECONDS))
    assert third.job_name == "rate_new_usage" and paths_of(third) == ["c.ndjson"]
    land_now(warehouse)
    quiet = at(MAX_DRAFT_LAG_SECONDS + QUIET_SECONDS)
    last, cursor = landing_run_request(warehouse, cursor, now=quiet)
    assert last.job_name == "land_and_rate" and paths_of(last) == ["c.ndjson"]
    assert landing_run_request(warehouse, cursor, now=quiet)[0] is None


def _finished(instance, request: dg.RunRequest, status: dg.DagsterRunStatus) -> None:
    """A run of the request that ended with `status` (what the daemon would have recorded)."""
    instance.add_run(
        dg.DagsterRun(
            job_name=request.job_name,
            run_id=f"run-{len(instance.get_run_records())}",
            status=status,
            tags={"dagster/run_key": request.run_key},
        )
    )


def test_files_a_failed_run_left_are_asked_for_again_and_a_failed_draft_run_is_retried(tmp_path):
    """Item 1 of issue 17: the cursor never marks a file done; only landing does."""
    warehouse = make_warehouse(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    start = datetime.now(UTC)
    at = seconds_after(start)

    drop(warehouse, "a.ndjson", event("retry-1"))
    first, cursor = landing_run_request(warehouse, {}, now=start, instance=instance)
    _finished(instance, first, dg.DagsterRunStatus.FAILURE)  # landing failed: nothing landed
    assert landing_run_request(warehouse, cursor, now=at(RETRY_SECONDS - 1))[0] is None
    again, cursor = landing_run_request(warehouse, cursor, now=at(RETRY_SECONDS), instance=instance)
    assert again.job_name == "rate_new_usage" and paths_of(again) == ["a.ndjson"]
    assert again.run_key != first.run_key
    land_now(warehouse)

    quiet = at(RETRY_SECONDS + QUIET_SECONDS)
    full, cursor = landing_run_request(warehouse, cursor, now=quiet, instance=instance)
    assert full.job_name == "land_and_rate"
    assert landing_run_request(warehouse, cursor, now=quiet, instance=instance)[0] is None
    _finished(instance, full, dg.DagsterRunStatus.FAILURE)
    retried, cursor = landing_run_request(
        warehouse, cursor, now=quiet + timedelta(seconds=RETRY_SECONDS), instance=instance
    )
    assert retried.job_name == "land_and_rate" and paths_of(retried) == ["a.ndjson"]
    assert retried.run_key != full.run_key
    _finished(instance, retried, dg.DagsterRunStatus.SUCCESS)
    done = quiet + timedelta(seconds=MAX_RETRY_SECONDS)
    assert landing_run_request(warehouse, cursor, now=done, instance=instance)[0] is None


def test_a_bulk_batch_goes_straight_to_land_and_rate_and_is_retried_there(tmp_path, monkeypatch):
    """New files of BILLING_BULK_LANDING_BYTES or more skip the fast run (which would rate them
    only for land_and_rate to rate them again), taking the files still pending with them."""
    monkeypatch.setenv("BILLING_BULK_LANDING_BYTES", "4000")
    warehouse, instance = make_warehouse(tmp_path), dg.DagsterInstance.ephemeral()
    at = seconds_after(datetime.now(UTC))

    drop(warehouse, "small.ndjson", event("bulk-0"))
    fast, cursor = landing_run_request(warehouse, {}, now=at(0), instance=instance)
    assert fast.job_name == "rate_new_usage" and paths_of(fast) == ["small.ndjson"]
    land_now(warehouse)

    drop(warehouse, "day.ndjson", *(event(f"bulk-{n}") for n in range(1, 40)))
    assert (warehouse.landing_dir / "day.ndjson").stat().st_size >= 4000
    bulk, cursor = landing_run_request(warehouse, cursor, now=at(1), instance=instance)
    assert bulk.job_name == "land_and_rate"
    assert paths_of(bulk) == ["small.ndjson", "day.ndjson"]
    assert "pending" not in cursor

    # It failed before landing: nothing is asked for until the backoff, then land_and_rate again.
    _finished(instance, bulk, dg.DagsterRunStatus.FAILURE)
    assert (
        landing_run_request(warehouse, cursor, now=at(RETRY_SECONDS), instance=instance)[0] is None
    )
    retried, cursor = landing_run_request(
        warehouse, cursor, now=at(1 + RETRY_SECONDS), instance=instance
    )
    assert retried.job_name == "land_and_rate" and paths_of(retried) == paths_of(bulk)
    _finished(instance, retried, dg.DagsterRunStatus.SUCCESS)
    land_now(warehouse)
    done = at(1 + RETRY_SECONDS + MAX_RETRY_SECONDS)
    assert landing_run_request(warehouse, cursor, now=done, instance=instance)[0] is None


@pytest.mark.parametrize("job_name", ["rate_new_usage", "land_and_rate"])
def test_the_sensor_waits_while_a_run_is_active(tmp_path, job_name):
    warehouse = make_warehouse(tmp_path)
    drop(warehouse, "a.ndjson", event("wait-1"))
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
        # The fast path refreshes the quotas too: a blocking quota closes access this promptly.
        # seeds/usage_quotas.csv: acct_meridian may make 250,000 calls a period (policy bill).
        quotas = httpx.get(
            f"{server.url}/v1/accounts/acct_meridian/quotas",
            params={"period": "2026-01"},
            headers=headers,
        ).json()
        assert quotas["period"] == {"start": "2026-01-01", "end": "2026-02-01"}
        [calls] = quotas["quotas"]
        assert calls["meter_code"] == "api.requests" and calls["overage_policy"] == "bill"
        assert [Decimal(calls[k]) for k in ("used_quantity", "remaining_quantity")] == [
            Decimal("107.5"),
            Decimal("249892.5"),
        ]
        assert calls["has_access"] is True and calls["is_exhausted"] is False

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
