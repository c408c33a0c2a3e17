"""Uniqueness of the tables that grow by arrival (int_usage_events_classified.raw_event_key,
whose rows fct_usage_event_outcomes shows, and int_usage_events_deduped.unique_id): a build
checks the keys it added against the whole table, so the check's cost follows the batch; `dbt
test` on its own checks every row. The raw layer's key is checked through the classification
in a build; its full `unique` is an audit test, left out of Dagster's builds (decision 91)."""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from dagster_billing.defs.invoicing.checks import nothing_lost
from tests.conftest import (
    FIXTURES,
    MALFORMED_AS_OF,
    MALFORMED_GROUP,
    copy_warehouse,
    query,
    run_pipeline,
)
from tests.test_dbt_unit_tests import _dbt

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(MALFORMED_GROUP)]
AS_OF = MALFORMED_AS_OF
CLASSIFIED_CHECK = "unique_by_arrival_int_usage_events_classified_raw_event_key"
DEDUPED_CHECK = "unique_by_arrival_int_usage_events_deduped_unique_id"
RAW_AUDIT = "source_unique_raw_usage_events_raw_event_key"
CLASSIFIED_RULES = "table_rules_int_usage_events_classified"
CLASSIFIED = "intermediate.int_usage_events_classified"


def _check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.fixture
def warehouse(malformed_warehouse, tmp_path):
    """A copy of the shared run of tests/fixtures/malformed, whose build passed both checks."""
    checks = _check_results(malformed_warehouse.result)
    assert checks[CLASSIFIED_CHECK] and checks[DEDUPED_CHECK]
    return copy_warehouse(malformed_warehouse.warehouse, tmp_path)


def _checks_of_a_run_after(warehouse, statement: str) -> dict[str, bool]:
    """The checks of a pipeline run after `statement` changed the warehouse, as a fault would."""
    with warehouse.connect() as connection:
        connection.execute(statement)
    return _check_results(run_pipeline(warehouse, as_of=AS_OF, raise_on_error=False))


def _copy_accepted_event(warehouse, table: str, *, file_seq: int, copies: int) -> None:
    """Corrupt `table` the way a faulty model would: `copies` more rows of an accepted event."""
    with warehouse.connect() as connection:
        for _ in range(copies):
            connection.execute(
                f"insert into {table} select * replace ({file_seq} as file_seq) from {table}"
                " where outcome = 'accepted' order by raw_event_key limit 1"
            )


def test_a_build_that_adds_bad_rows_fails_the_checks_that_read_them(warehouse):
    # As a faulty classification would hand them on, in a file no run has seen yet: two copies
    # of an accepted event, and an accepted event without a unique_id. int_usage_events_deduped
    # adds the unique_id twice, which its uniqueness check refuses, and the row without one,
    # which its row rules refuse: they read only the rows the build added (table_rules'
    # arrival_column). (The classification's own check is shown failing below, on a raw key
    # landed twice.)
    _copy_accepted_event(warehouse, CLASSIFIED, file_seq=1000, copies=2)

    checks = _checks_of_a_run_after(
        warehouse,
        f"insert into {CLASSIFIED} select * replace"
        " (1000 as file_seq, null as unique_id, null as unique_id_hash)"
        f" from {CLASSIFIED} where outcome = 'accepted' order by raw_event_key limit 1",
    )

    assert checks[DEDUPED_CHECK] is False
    assert checks["table_rules_int_usage_events_deduped"] is False


def test_a_raw_key_landed_twice_fails_the_builds_checks_and_the_audit(warehouse, tmp_path):
    # A landed row written again into its committed batch, as a file that arrived later.
    for batch_file in sorted(warehouse.raw_store.table_dir("usage_events").glob("*/batch=*/*")):
        row = pl.read_parquet(batch_file, n_rows=1)
        if row.height:
            break
    again = row.with_columns(file_seq=pl.lit(1000, pl.Int32))
    again.write_parquet(batch_file.with_name("again.parquet"))

    result = run_pipeline(warehouse, as_of=AS_OF, raise_on_error=False)

    checks = _check_results(result)
    # The key reaches the classification twice: the build stops there, before the usage is
    # rated or the outcomes counted.
    assert checks[CLASSIFIED_CHECK] is False
    assert "assert_nothing_lost" not in checks
    materialized = {
        event.asset_key.path[-1]
        for event in result.asset_materializations_for_node("billing_dbt_models")
    }
    assert "int_usage_events_classified" in materialized
    assert "fct_rated_usage" not in materialized
    # The raw layer's own `unique` reads every landed row: not a check of the build...
    assert RAW_AUDIT not in checks
    # ...but of `dbt test --select tag:audit`.
    tested = _dbt(warehouse, tmp_path / "target", "test", "--select", "tag:audit")
    assert tested.returncode == 1, tested.stdout[-4000:]
    assert f"FAIL 1 {RAW_AUDIT}" in tested.stdout, tested.stdout[-4000:]


def test_a_build_checks_only_what_it_added_and_dbt_test_checks_every_row(warehouse, tmp_path):
    # A duplicate among rows an earlier build added (and checked) is not looked at again, nor
    # is a row without an outcome there...
    _copy_accepted_event(
        warehouse, "intermediate.int_usage_events_classified", file_seq=1, copies=1
    )
    with warehouse.connect() as connection:
        connection.execute(
            f"insert into {CLASSIFIED} select * replace (null as outcome) from {CLASSIFIED}"
            " where file_seq = 1 order by raw_event_key limit 1"
        )
    shutil.copy(FIXTURES / "malformed" / "backfill.csv", warehouse.landing_dir / "late.csv")

    result = run_pipeline(warehouse, as_of=AS_OF, raise_on_error=False)

    checks = _check_results(result)
    assert checks[CLASSIFIED_CHECK] is True
    assert checks[CLASSIFIED_RULES] is True
    # ...but `dbt test` on its own checks the whole table.
    selection = "int_usage_events_classified,test_name:unique_by_arrival"
    tested = _dbt(warehouse, tmp_path / "target", "test", "--select", selection)
    assert tested.returncode == 1, tested.stdout[-4000:]
    assert f"FAIL 1 {CLASSIFIED_CHECK}" in tested.stdout, tested.stdout[-4000:]
    tested = _dbt(warehouse, tmp_path / "target", "test", "--select", CLASSIFIED_RULES)
    assert tested.returncode == 1, tested.stdout[-4000:]
    assert f"FAIL 1 {CLASSIFIED_RULES}" in tested.stdout, tested.stdout[-4000:]


def test_table_rules_fail_on_the_rows_they_refuse(malformed_warehouse, warehouse, tmp_path):
    """table_rules (tests/generic/table_rules.sql, decision 108) checks a table's key, not-null
    columns, unique columns and accepted values in one test: one failing row per broken rule
    and value, which names its rule."""
    check = "table_rules_fct_invoices"
    # It passed in the build of the shared warehouse this test's copy was taken from.
    assert _check_results(malformed_warehouse.result)[check] is True
    with warehouse.connect() as connection:
        connection.execute(
            "insert into billing.fct_invoices select * from billing.fct_invoices "
            "order by invoice_id limit 1"
        )
        connection.execute(
            "insert into billing.fct_invoices select * replace (null as invoice_id, null as total) "
            "from billing.fct_invoices order by invoice_id desc limit 1"
        )
        connection.execute(
            "insert into billing.fct_invoices select * replace "
            "('inv-without-account' as invoice_id, null as account_id) "
            "from billing.fct_invoices order by invoice_id desc limit 1"
        )

    # --store-failures: the failing rows are kept in dbt_test__audit.<test>.
    tested = _dbt(warehouse, tmp_path / "target", "test", "--select", check, "--store-failures")

    assert tested.returncode == 1, tested.stdout[-4000:]
    failures = query(warehouse, f"select rule, value, n_records from dbt_test__audit.{check}")
    assert len(failures) == len(set(failures)), failures
    # The copies' invoices are drafts, without a number: no `unique invoice_number` failure.
    assert set(failures) == {
        # The invoice copied whole; the copy without an id (the key's nulls, one row).
        ("primary_key invoice_id", "inv-acct_atlas-2026-01-01", 2),
        ("primary_key invoice_id", None, 1),
        # The copy without a total, the copy without an account.
        ("not_null total", None, 1),
        ("not_null account_id", None, 1),
    }
    assert f"FAIL {len(failures)} {check}" in tested.stdout, tested.stdout[-4000:]


def test_a_lost_row_fails_both_nothing_lost_checks(warehouse, tmp_path):
    """raw = accepted + duplicates + quarantined, checked twice: by dbt (`assert_nothing_lost`,
    row counts) and by the `nothing_lost` asset check (counts per outcome)."""
    checks = _checks_of_a_run_after(
        warehouse,
        f"delete from {CLASSIFIED} where raw_event_key = "
        f"(select min(raw_event_key) from {CLASSIFIED})",
    )

    # The build's dbt test fails, which stops the run before the asset check...
    assert checks["assert_nothing_lost"] is False
    tested = _dbt(warehouse, tmp_path / "target", "test", "--select", "assert_nothing_lost")
    assert tested.returncode == 1, tested.stdout[-4000:]
    # ...which fails too, on its own.
    checked = nothing_lost(warehouse=warehouse)
    assert checked.passed is False
    assert checked.metadata["raw"].value == 1 + sum(
        checked.metadata[outcome].value for outcome in ("accepted", "duplicates", "quarantined")
    )


def _event_line(unique_id: str) -> str:
    return (
        f'{{"uniqueId":"{unique_id}","account":"acct_meridian","meter":"api.requests",'
        '"value":1,"ts":"2026-01-20T10:00:00Z"}\n'
    )


def _outcomes(warehouse, *unique_ids: str) -> list[tuple]:
    listed = ", ".join(f"'{unique_id}'" for unique_id in unique_ids)
    return query(
        warehouse,
        f"select unique_id, outcome from {CLASSIFIED} where unique_id in ({listed})"
        " order by unique_id, file_seq",
    )


def test_the_lookup_of_earlier_arrivals_reads_only_files_whose_id_range_can_hold_them(warehouse):
    # Each build records the accepted ids' range per file (decision 119), for every file.
    ranges_sql = "select file_seq, min_id, max_id from dbt_internal.{} order by file_seq"
    accepted_sql = (
        "select file_seq, min(case when outcome = 'accepted' then unique_id end),"
        " max(case when outcome = 'accepted' then unique_id end)"
        f" from {CLASSIFIED} group by file_seq order by file_seq"
    )
    recorded = query(
        warehouse, ranges_sql.format("dbt_arrival_id_ranges__int_usage_events_classified")
    )
    assert recorded == query(warehouse, accepted_sql) and len(recorded) >= 2
    _, first_low, first_high = recorded[0]
    assert max(high for _, _, high in recorded if high) < "zzz-late"
    # An accepted event of the first file renamed 'zzz-late' behind the hooks' back, outside the
    # range recorded for that file: a lookup that reads the file would find it.
    with warehouse.connect() as connection:
        connection.execute(
            f"update {CLASSIFIED} set unique_id = 'zzz-late',"
            " unique_id_hash = md5_number_lower('zzz-late')"
            f" where unique_id = ? and outcome = 'accepted'",
            [first_high],
        )
    (warehouse.landing_dir / "later.ndjson").write_text(_event_line("zzz-late"))

    assert run_pipeline(warehouse, as_of=AS_OF).success
    # The batch's ids lie above every recorded range: the lookup skipped the first file.
    assert _outcomes(warehouse, "zzz-late") == [("zzz-late", "accepted")] * 2

    # An id re-sent from the first file widens the batch's range back to it: a duplicate.
    (warehouse.landing_dir / "resent.ndjson").write_text(_event_line(first_low))
    assert run_pipeline(warehouse, as_of=AS_OF).success
    assert _outcomes(warehouse, first_low) == [(first_low, "accepted"), (first_low, "duplicate")]
    deduped = query(warehouse, ranges_sql.format("dbt_arrival_id_ranges__int_usage_events_deduped"))
    # The deduplicated events' ranges: one row per file they hold (the last file's only row was
    # a duplicate), each the range of the ids they hold.
    assert deduped == query(
        warehouse,
        "select file_seq, min(unique_id), max(unique_id)"
        " from intermediate.int_usage_events_deduped group by file_seq order by file_seq",
    )
    assert [row[0] for row in deduped] == [row[0] for row in recorded] + [recorded[-1][0] + 1]
