"""The published read side (dagster_billing.analytics) on ONE shared scenario: docs/analytics.md's
data set (tests/fixtures/analytics) run as a month of billing would run it:

  1. billing_pipeline for January's usage (clock 2026-01-20): snapshot 1;
  2. a reader PROCESS opens snapshot 1 read-only and keeps it open, while it also opens the
     current snapshot again and again and checks each is whole;
  3. February's usage lands: billing_pipeline (clock 2026-02-05), then close_billing_period for
     January (final), both while the reader holds snapshot 1.

Then: both runs succeeded, the held reader still saw exactly snapshot 1 (January a draft), every
open saw one whole snapshot, the five queries of docs/analytics.md give the outputs printed there,
every published and mart column has a description, and `billing analytics` finds the snapshots.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_billing.analytics import list_snapshots, open_snapshot, snapshot_meta
from dagster_billing.analytics.tables import PARTITION_COLUMNS, PUBLISHED_TABLES
from dagster_billing.cli import main
from dagster_billing.paths import DBT_MANIFEST_PATH, REPO_ROOT
from tests.conftest import FIXTURES, case_warehouse, close_period, query, run_pipeline

CASE = FIXTURES / "analytics"
ANALYTICS_DOC = REPO_ROOT / "docs" / "analytics.md"

# Holds snapshot 1 open for its whole life; meanwhile opens the current snapshot every 0.2 s and
# checks that each open sees one whole snapshot (every table's row count as meta.tables says).
READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from dagster_billing.analytics import open_snapshot, snapshot_meta

    data_dir, stop = sys.argv[1], Path(sys.argv[2])

    def look(connection):
        recorded = connection.execute("select schema_name, table_name, row_count from meta.tables")
        whole = all(
            connection.execute(f"select count(*) from {schema}.{table}").fetchone()[0] == rows
            for schema, table, rows in recorded.fetchall()
        )
        return {"seq": snapshot_meta(connection)["seq"], "whole": whole}

    held = open_snapshot(data_dir)
    print(json.dumps(look(held)), flush=True)
    opens = []
    while not stop.exists():
        with open_snapshot(data_dir) as connection:
            opens.append(look(connection))
        time.sleep(0.2)
    january = held.execute(
        "select distinct status from billing.fct_invoices where period_start = '2026-01-01'"
    ).fetchall()
    print(json.dumps({"held": look(held), "january": january, "opens": opens}), flush=True)
    """
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("analytics")
    warehouse = case_warehouse(root, CASE)
    warehouse.landing_dir.mkdir(parents=True)
    shutil.copy(CASE / "usage" / "january.ndjson", warehouse.landing_dir)
    first = run_pipeline(warehouse, as_of="2026-01-20T00:00:00")

    stop = root / "stop-reader"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(warehouse.root), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        opened = json.loads(reader.stdout.readline())
        shutil.copy(CASE / "usage" / "february.ndjson", warehouse.landing_dir)
        runs = [
            run_pipeline(warehouse, as_of="2026-02-05T00:00:00", raise_on_error=False),
            close_period(
                warehouse, "2026-01-01", as_of="2026-02-05T00:00:00", raise_on_error=False
            ),
        ]
        stop.touch()
        seen = json.loads(reader.stdout.readline())
    finally:
        stop.touch()
        reader.wait(timeout=60)
    return {
        "warehouse": warehouse,
        "first_run": first.run_id,
        "runs": runs,
        "opened": opened,
        "seen": seen,
    }


@pytest.mark.slow
def test_runs_succeed_while_a_reader_holds_a_snapshot(scenario):
    assert [run.success for run in scenario["runs"]] == [True, True]
    assert scenario["opened"] == {"seq": 1, "whole": True}
    # The held connection kept reading snapshot 1, whole, January still a draft in it.
    assert scenario["seen"]["held"] == {"seq": 1, "whole": True}
    assert scenario["seen"]["january"] == [["draft"]]
    # Every open while the runs published saw one whole snapshot, never a mix.
    opens = scenario["seen"]["opens"]
    assert opens and all(look["whole"] for look in opens)
    assert [look["seq"] for look in opens] == sorted(look["seq"] for look in opens)


@pytest.mark.slow
def test_each_run_publishes_a_snapshot_and_the_current_one_is_the_last(scenario):
    data_dir = scenario["warehouse"].root
    assert [snapshot.seq for snapshot in list_snapshots(data_dir)] == [1, 2, 3]
    with open_snapshot(data_dir, seq=1) as connection:
        assert snapshot_meta(connection)["run_id"] == scenario["first_run"]
    with open_snapshot(data_dir) as connection:
        meta = snapshot_meta(connection)
        assert (meta["seq"], meta["run_id"]) == (3, scenario["runs"][1].run_id)
        published = connection.execute(
            "select schema_name, table_name from meta.tables order by all"
        ).fetchall()
        statuses = connection.execute(
            "select period_start, status, count(*) from billing.fct_invoices group by all order by all"
        ).fetchall()
    assert published == sorted(PUBLISHED_TABLES)
    assert [(str(day), status, n) for day, status, n in statuses] == [
        ("2026-01-01", "final", 3),
        ("2026-02-01", "draft", 3),
    ]


def _documented_queries() -> list[tuple[str, str, list[list[str]]]]:
    """(title, SQL, expected rows incl. header) of each ```sql block of docs/analytics.md that a
    Markdown table follows."""
    text = ANALYTICS_DOC.read_text()
    found = []
    pattern = r"### (?P<title>[^\n]+)\n(?:(?!###).)*?```sql\n(?P<sql>.*?)```\n\n(?P<table>(?:\|[^\n]*\|\n)+)"
    for match in re.finditer(pattern, text, re.S):
        rows = [
            [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in match["table"].strip().splitlines()
        ]
        found.append((match["title"], match["sql"], [rows[0], *rows[2:]]))
    return found


def _as_table(cursor) -> list[list[str]]:
    header = [column[0] for column in cursor.description]
    body = [["NULL" if value is None else str(value) for value in row] for row in cursor.fetchall()]
    return [header, *body]


@pytest.mark.slow
def test_the_five_analyst_queries_give_the_documented_outputs(scenario):
    queries = _documented_queries()
    assert len(queries) == 5
    with open_snapshot(scenario["warehouse"].root) as connection:
        for title, sql, expected in queries:
            actual = _as_table(connection.execute(sql))
            table = "\n".join("| " + " | ".join(row) + " |" for row in actual)
            assert actual == expected, f"{title}: docs/analytics.md should show\n{table}"


def _manifest_descriptions() -> dict[tuple[str, str], dict[str, str]]:
    manifest = json.loads(DBT_MANIFEST_PATH.read_text())
    return {
        (node["config"].get("schema") or node["schema"], node["name"]): {
            name: column.get("description", "") for name, column in node["columns"].items()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


@pytest.mark.slow
def test_every_published_and_mart_column_is_described(scenario):
    descriptions = _manifest_descriptions()
    with open_snapshot(scenario["warehouse"].root) as connection:
        published = connection.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where table_schema != 'meta'"
        ).fetchall()
    marts = query(
        scenario["warehouse"],
        "select table_schema, table_name, column_name from information_schema.columns"
        " where table_schema in ('billing', 'revenue', 'ledger', 'sync')",
    )
    undescribed = sorted(
        f"{schema}.{table}.{column}"
        for schema, table, column in {*published, *marts}
        if not descriptions.get((schema, table), {}).get(column, "").strip()
    )
    assert undescribed == [], "describe these columns in the model's YAML"


@pytest.mark.slow
def test_dbt_bookkeeping_is_not_in_analyst_schemas(scenario):
    tables = query(
        scenario["warehouse"],
        "select table_schema from information_schema.tables where table_name = 'dbt_arrival_watermarks'",
    )
    assert tables == [("dbt_internal",)]


@pytest.mark.slow
def test_billing_analytics_path_list_and_shell(scenario):
    data_dir = str(scenario["warehouse"].root)
    runner = CliRunner()
    path = runner.invoke(main, ["analytics", "path", "--data-dir", data_dir])
    assert path.exit_code == 0, path.output
    assert Path(path.output.strip()) == list_snapshots(data_dir)[-1].path
    listed = runner.invoke(main, ["analytics", "list", "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert scenario["runs"][1].run_id in listed.output.splitlines()[-1]
    assert "(current)" in listed.output.splitlines()[-1]
    shell = subprocess.run(
        [
            *(sys.executable, "-m", "dagster_billing.cli", "analytics", "shell"),
            *("--data-dir", data_dir, "--", "-csv", "-c", "select seq from meta.snapshot"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.splitlines() == ["seq", "3"]


@pytest.mark.slow
def test_the_current_snapshot_holds_exactly_the_warehouses_rows(scenario):
    """Snapshots 2 and 3 were built on the one before (partitions rewritten where rows changed):
    what they hold is still the warehouse's rows, table by table."""
    import duckdb

    data_dir = scenario["warehouse"].root
    with duckdb.connect(":memory:") as connection:
        connection.execute(f"attach '{scenario['warehouse'].duckdb_path}' as w (read_only)")
        connection.execute(f"attach '{data_dir / 'analytics' / 'current.duckdb'}' as s (read_only)")
        differences = {
            f"{schema}.{table}": connection.execute(
                f"""select count(*) from (
                    (select * from w.{schema}.{table} except all select * from s.{schema}.{table})
                    union all
                    (select * from s.{schema}.{table} except all select * from w.{schema}.{table})
                )"""
            ).fetchone()[0]
            for schema, table in PUBLISHED_TABLES
        }
        fingerprinted = connection.execute(
            "select distinct table_name from s.meta.partitions order by all"
        ).fetchall()
    assert differences == {name: 0 for name in differences}
    assert [table for (table,) in fingerprinted] == sorted(table for _, table in PARTITION_COLUMNS)


def _partitioned_warehouse(path: Path, days: list[str], extra_column: bool = False) -> None:
    """Every published table; the partitioned ones with their partition column holding `days`
    (quarantine's file_seq: 1..len(days)) and a value per row."""
    import duckdb

    with duckdb.connect(str(path)) as connection:
        for schema, table in PUBLISHED_TABLES:
            connection.execute(f"create schema if not exists {schema}")
            column = PARTITION_COLUMNS.get((schema, table))
            if column is None:
                select = "select 1 as id"
            elif column == "file_seq":
                select = f"select range + 1 as file_seq, 'r' as reason from range({len(days)})"
            else:
                values = ", ".join(f"(date '{day}', 1.5)" for day in days)
                select = f"select * from (values {values}) as t({column}, sum_value)"
            if extra_column and column == "usage_day":
                select = f"select *, 'x' as unit from ({select})"
            connection.execute(f"create or replace table {schema}.{table} as {select}")


def test_a_snapshot_is_built_on_the_previous_one_rewriting_only_changed_partitions(
    tmp_path: Path,
):
    import duckdb

    from dagster_billing.analytics.publish import publish_snapshot

    warehouse = tmp_path / "warehouse.duckdb"
    hourly = "billing.fct_usage_hourly"

    def publish(run_id: str):
        return publish_snapshot(warehouse, tmp_path, run_id=run_id, as_of=None)

    def rows(path: Path) -> list:
        with duckdb.connect(str(path), read_only=True) as connection:
            return connection.execute(f"select * from {hourly} order by all").fetchall()

    _partitioned_warehouse(warehouse, ["2026-01-01", "2026-01-02", "2026-01-03"])
    first = publish("run-1")
    assert first.built_on is None
    assert first.partitions_rewritten[hourly] == (3, 3)
    first_rows = rows(first.path)

    # One day restated, one gone, one new: three partitions rewritten, the other day kept.
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(f"update {hourly} set sum_value = 2.5 where usage_day = '2026-01-02'")
        connection.execute(f"delete from {hourly} where usage_day = '2026-01-03'")
        connection.execute(f"insert into {hourly} values (date '2026-01-04', 4.5)")
    second = publish("run-2")
    assert second.built_on == first.path
    assert second.partitions_rewritten[hourly] == (3, 3)
    assert second.partitions_rewritten["billing.fct_usage_daily"] == (0, 3)
    assert [(str(day), str(value)) for day, value in rows(second.path)] == [
        ("2026-01-01", "1.5"),
        ("2026-01-02", "2.5"),
        ("2026-01-04", "4.5"),
    ]
    # The snapshot it was built on is untouched.
    assert rows(first.path) == first_rows

    # Nothing changed: nothing rewritten.
    assert publish("run-3").partitions_rewritten[hourly] == (0, 3)

    # A column added to the warehouse's table: that table is copied whole.
    _partitioned_warehouse(warehouse, ["2026-01-01"], extra_column=True)
    fourth = publish("run-4")
    assert fourth.partitions_rewritten[hourly] == (1, 1)
    with duckdb.connect(str(fourth.path), read_only=True) as connection:
        assert connection.execute(f"select unit from {hourly}").fetchall() == [("x",)]

    # A snapshot whose rows no longer match its fingerprints (edited by hand) is caught by the
    # whole-table check and copied whole.
    with duckdb.connect(str(fourth.path)) as connection:
        connection.execute(f"update {hourly} set sum_value = 9")
    fifth = publish("run-5")
    assert fifth.partitions_rewritten[hourly] == (1, 1)
    assert [str(value) for _, value, _ in rows(fifth.path)] == ["1.5"]

    # Published by another DuckDB version (its hash may differ): not built on.
    with duckdb.connect(str(fifth.path)) as connection:
        connection.execute("update meta.snapshot set duckdb_version = '0.0.0'")
    assert publish("run-6").built_on is None

    # Tables without their partition column are copied whole; their fingerprints are dropped.
    seventh = publish("run-7")
    _small_warehouse(warehouse, 1)
    eighth = publish("run-8")
    assert (eighth.built_on, eighth.partitions_rewritten) == (seventh.path, {})
    with duckdb.connect(str(eighth.path), read_only=True) as connection:
        assert connection.execute("select count(*) from meta.partitions").fetchone() == (0,)


def test_a_data_directory_copied_without_its_symlinks_still_reads_and_publishes(tmp_path: Path):
    """`cp -r` (or shutil.copytree) turns analytics/current.duckdb into a copy of the snapshot
    it named: readers open that copy, and the next publish builds on it and links it again."""
    from dagster_billing.analytics.publish import publish_snapshot

    source = tmp_path / "source"
    source.mkdir()
    _partitioned_warehouse(source / "warehouse.duckdb", ["2026-01-01", "2026-01-02"])
    publish_snapshot(source / "warehouse.duckdb", source, run_id="run-1", as_of=None)
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert not (copy / "analytics" / "current.duckdb").is_symlink()

    with open_snapshot(copy) as connection:
        assert snapshot_meta(connection)["run_id"] == "run-1"
    second = publish_snapshot(copy / "warehouse.duckdb", copy, run_id="run-2", as_of=None)
    assert second.partitions_rewritten["billing.fct_usage_hourly"] == (0, 2)
    assert (copy / "analytics" / "current.duckdb").resolve() == second.path


def test_no_snapshot_yet_is_a_clear_error(tmp_path: Path):
    result = CliRunner().invoke(main, ["analytics", "path", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "no analytics snapshot" in result.output


def _small_warehouse(path: Path, rows: int) -> Path:
    """A warehouse holding every published table with `rows` rows (publishing needs no pipeline)."""
    import duckdb

    with duckdb.connect(str(path)) as connection:
        for schema, table in PUBLISHED_TABLES:
            connection.execute(f"create schema if not exists {schema}")
            connection.execute(
                f"create or replace table {schema}.{table} as select range as id from range({rows})"
            )
    return path


def test_publishing_keeps_the_last_n_and_never_disturbs_an_open_reader(tmp_path: Path):
    from dagster_billing.analytics.publish import publish_snapshot

    warehouse = tmp_path / "warehouse.duckdb"
    published = []
    for rows in (1, 2):
        _small_warehouse(warehouse, rows)
        published.append(publish_snapshot(warehouse, tmp_path, run_id=f"run-{rows}", as_of=None))
    held = open_snapshot(tmp_path)
    assert snapshot_meta(held)["seq"] == 2
    for rows in (3, 4):
        _small_warehouse(warehouse, rows)
        published.append(
            publish_snapshot(warehouse, tmp_path, run_id=f"run-{rows}", as_of=None, keep=2)
        )
    # Snapshot 2 was deleted while open: the reader still reads it, whole.
    assert not published[1].path.exists()
    assert held.execute("select count(*) from billing.fct_invoices").fetchone() == (2,)
    held.close()
    assert [s.seq for s in list_snapshots(tmp_path)] == [3, 4]
    with open_snapshot(tmp_path) as connection:
        assert snapshot_meta(connection)["run_id"] == "run-4"
        assert connection.execute("select count(*) from billing.fct_invoices").fetchone() == (4,)
    assert (
        sorted(p.name for p in (tmp_path / "analytics").iterdir() if p.name.startswith(".")) == []
    )


def test_a_warehouse_without_the_marts_publishes_nothing(tmp_path: Path):
    import duckdb

    from dagster_billing.analytics.publish import publish_snapshot

    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    with pytest.raises(RuntimeError, match=r"the warehouse has no billing\.fct_rated_usage"):
        publish_snapshot(warehouse, tmp_path, run_id="r", as_of=None)
    assert list((tmp_path / "analytics").iterdir()) == []
