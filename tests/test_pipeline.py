"""The whole pipeline on generated data: nothing lost, exact totals, replayable byte for byte,
and the incremental path (files landing over several runs) equal to one run over all of them."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import (
    GENERATED_AS_OF,
    GENERATED_GROUP,
    copy_warehouse,
    make_warehouse,
    query,
    run_pipeline,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(GENERATED_GROUP)]
# Every run of these tests uses the clock of the shared run, so exports compare byte for byte.
AS_OF = GENERATED_AS_OF


def _exports(warehouse) -> dict[str, bytes]:
    root = warehouse.exports_dir
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.csv"))}


def test_every_check_passes(generated_warehouse):
    result = generated_warehouse.result
    evaluations = result.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    assert evaluations and not failed


def test_outcomes_match_what_the_generator_wrote(generated_events, generated_warehouse):
    summary = generated_events.summary
    warehouse = generated_warehouse.warehouse
    outcomes = dict(
        query(
            warehouse, "select outcome, count(*) from billing.fct_usage_event_outcomes group by 1"
        )
    )
    assert sum(outcomes.values()) == summary.total_rows
    assert outcomes["accepted"] == summary.valid_events
    assert outcomes["duplicate"] == summary.duplicates + summary.conflicting_duplicates
    assert outcomes["quarantined"] == sum(summary.malformed.values())
    [(conflicts,)] = query(
        warehouse, "select count(*) from billing.fct_usage_event_outcomes where is_conflicting"
    )
    assert conflicts == summary.conflicting_duplicates
    # The nothing_lost check reports the same counts, and the quarantine's per reason.
    [check] = [
        e
        for e in generated_warehouse.result.get_asset_check_evaluations()
        if e.check_name == "nothing_lost"
    ]
    metadata = {key: value.value for key, value in check.metadata.items()}
    assert metadata["raw"] == summary.total_rows
    assert (metadata["accepted"], metadata["duplicates"], metadata["quarantined"]) == (
        outcomes["accepted"],
        outcomes["duplicate"],
        outcomes["quarantined"],
    )
    assert metadata["quarantine_reasons"] == dict(
        query(
            warehouse,
            "select reason, count(*) from billing.fct_usage_event_outcomes"
            " where outcome = 'quarantined' group by 1 order by 1",
        )
    )


def test_invoice_totals_equal_their_lines_exactly(generated_warehouse):
    warehouse = generated_warehouse.warehouse
    totals = dict(query(warehouse, "select invoice_id, total from billing.fct_invoices"))
    lines: dict[str, Decimal] = {}
    for invoice_id, amount in query(
        warehouse, "select invoice_id, amount from billing.fct_invoice_lines"
    ):
        lines[invoice_id] = lines.get(invoice_id, Decimal(0)) + amount
    assert totals and totals == lines
    assert all(isinstance(total, Decimal) for total in totals.values())


def test_exports_are_written_per_period(generated_warehouse):
    warehouse = generated_warehouse.warehouse
    assert sorted(name for name in _exports(warehouse) if name.startswith("invoices/")) == [
        "invoices/2026-01/invoice_lines.csv",
        "invoices/2026-01/invoices.csv",
        "invoices/2026-02/invoice_lines.csv",
        "invoices/2026-02/invoices.csv",
    ]


def test_replay_in_several_runs_gives_byte_identical_exports(
    generated_events, generated_warehouse, tmp_path
):
    """The same files landed over two runs (the incremental path: arrival watermarks, days
    restated, periods reassembled) give exactly what one run over all of them gives."""
    landing = generated_events.landing
    first = generated_warehouse.warehouse
    second = make_warehouse(tmp_path)
    files = sorted(landing.iterdir())
    second.landing_dir.mkdir(parents=True)
    # copy2 keeps the files' times: a file written less than BILLING_LANDING_QUIET_SECONDS ago
    # would wait for the next run and land in another order (other file_seq) than in `first`.
    for path in files[: len(files) // 2]:
        shutil.copy2(path, second.landing_dir)
    run_pipeline(second, as_of=AS_OF)
    for path in files[len(files) // 2 :]:
        shutil.copy2(path, second.landing_dir)

    run_pipeline(second, as_of=AS_OF)

    assert _exports(second) == _exports(first)
    for table, key in (
        ("billing.fct_invoices", "invoice_id"),
        ("billing.fct_invoice_lines", "invoice_line_id"),
        (
            "intermediate.int_usage_aggregated",
            "account_id, meter_code, dimension_value, period_start",
        ),
        ("intermediate.int_usage_daily", "account_id, meter_code, dimension_value, usage_day"),
        ("intermediate.int_usage_hourly", "account_id, meter_code, dimension_value, usage_hour"),
        ("intermediate.int_usage_events_deduped", "raw_event_key"),
        ("intermediate.int_seat_events", "file_seq, source_line"),
        # received_at is when a file was landed: the only thing a replay cannot reproduce.
        ("billing.fct_usage_event_outcomes exclude", "raw_event_key"),
    ):
        columns = "* exclude (received_at)" if table.endswith(" exclude") else "*"
        sql = f"select {columns} from {table.removesuffix(' exclude')} order by {key}"
        assert query(second, sql) == query(first, sql), table


def test_rerunning_on_the_same_warehouse_changes_nothing(generated_warehouse, tmp_path):
    warehouse = copy_warehouse(generated_warehouse.warehouse, tmp_path)
    before_files = query(warehouse, "select * from raw.landed_files order by file_seq")
    before_exports = _exports(warehouse)

    run_pipeline(warehouse, as_of=AS_OF)

    assert query(warehouse, "select * from raw.landed_files order by file_seq") == before_files
    assert _exports(warehouse) == before_exports


def test_the_usage_export_rewrites_only_the_files_whose_rows_changed(generated_warehouse, tmp_path):
    """exports/usage_csv keeps a fingerprint of each file's rows: a refresh rewrites the files
    whose rows changed, or that are missing or were edited, and writes the same bytes as a
    full export."""
    from dagster_billing.defs.invoicing.csv_files import (
        refresh_usage_exports,
        write_usage_exports,
    )
    from dagster_billing.defs.invoicing.queries import (
        fetch_usage_daily,
        fetch_usage_daily_by_dimension,
    )

    warehouse = copy_warehouse(generated_warehouse.warehouse, tmp_path / "copy")
    usage = warehouse.exports_dir / "usage"
    with warehouse.connect(read_only=True) as connection:
        # The copy has the shared run's exports and their fingerprints (copied with their
        # mtimes): nothing to rewrite.
        files = len(list(usage.rglob("*.csv")))
        assert files > 2
        assert refresh_usage_exports(connection, warehouse.exports_dir) == ([], files)
    [first, *others] = sorted(usage.rglob("*.csv"))
    first.write_text("edited by hand\n")
    (others[0]).unlink()
    period, account = first.parent.name, first.name.split(".")[0]
    with warehouse.connect() as connection:
        # One day's sum of the account's first summed meter in that period changes.
        [day] = connection.execute(
            """
            select meter_code, usage_day from intermediate.int_usage_daily
            where account_id = ? and strftime(period_start, '%Y-%m') = ?
                and dimension_value = '*' and aggregation = 'sum'
            order by usage_day, meter_code limit 1
            """,
            [account, period],
        ).fetchall()
        connection.execute(
            "update intermediate.int_usage_daily set sum_value = sum_value + 1 where "
            "account_id = ? and meter_code = ? and usage_day = ? and dimension_value = '*'",
            [account, *day],
        )

    with warehouse.connect(read_only=True) as connection:
        written, unchanged = refresh_usage_exports(connection, warehouse.exports_dir)
        full = tmp_path / "full"
        write_usage_exports(
            fetch_usage_daily(connection), fetch_usage_daily_by_dimension(connection), full
        )

    changed = usage / period / f"{account}.csv"
    assert sorted(written) == sorted({first, others[0], changed})
    assert unchanged == len(others) + 1 - len(written)
    assert (
        _exports(warehouse)["usage/" + changed.relative_to(usage).as_posix()]
        != (
            _exports(generated_warehouse.warehouse)[
                "usage/" + changed.relative_to(usage).as_posix()
            ]
        )
    )
    assert {
        name: content for name, content in _exports(warehouse).items() if name.startswith("usage/")
    } == {str(path.relative_to(full)): path.read_bytes() for path in sorted(full.rglob("*.csv"))}


def test_a_day_partition_run_restates_its_days_and_leaves_the_others(
    generated_warehouse, tmp_path, monkeypatch
):
    """A run for one day partition recomputes the daily rollups of that day and of the lookback
    day before it (usage_lookback_days) from the deduplicated events, with nothing new landed;
    days outside the partition's window stay as they are. Its one dbt invocation writes dbt's
    parse state (moved from its folder to the warehouse's shared state) but no JSON artifacts,
    and its log file at info, as a deployment that does not ask for more (decisions 88 and 90)."""
    from dagster_billing.defs.resources import dbt_target_root

    monkeypatch.delenv("DBT_WRITE_JSON", raising=False)
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    targets_before = set(dbt_target_root().iterdir())
    warehouse = copy_warehouse(generated_warehouse.warehouse, tmp_path)
    partition, lookback, outside = date(2026, 2, 10), date(2026, 2, 9), date(2026, 1, 20)

    def day_sums(day: date) -> list[tuple]:
        return query(
            warehouse,
            "select account_id, meter_code, dimension_value, sum_value "
            "from intermediate.int_usage_daily where usage_day = ? order by all",
            [day],
        )

    before = {day: day_sums(day) for day in (partition, lookback, outside)}
    assert all(before.values()), "the generated events cover all three days"
    with warehouse.connect() as connection:
        connection.execute(
            "update intermediate.int_usage_daily set sum_value = sum_value + 1 "
            "where usage_day in (?, ?, ?)",
            [partition, lookback, outside],
        )

    started = time.time() - 1
    run_pipeline(warehouse, as_of=AS_OF, day=partition.isoformat())

    assert day_sums(partition) == before[partition]
    assert day_sums(lookback) == before[lookback]
    assert day_sums(outside) == [(*row[:3], row[3] + 1) for row in before[outside]]
    [invocation] = [
        target
        for target in set(dbt_target_root().iterdir()) - targets_before
        if target.name.startswith("billing_dbt_models-")
    ]
    written = {path.name for path in invocation.iterdir()}
    assert "partial_parse.msgpack" not in written
    assert warehouse.dbt_parse_state.stat().st_mtime >= started
    assert not written & {"manifest.json", "run_results.json"}
    log = (invocation / "dbt.log").read_text().splitlines()
    levels = {json.loads(line)["info"]["level"] for line in log}  # JSON lines, as dagster-dbt asks
    assert "info" in levels and "debug" not in levels
