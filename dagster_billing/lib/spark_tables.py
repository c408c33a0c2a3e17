"""Spark tables in DuckDB: views over their Parquet files, for the Python side of the pipeline.

With BILLING_ENGINE=spark, dbt builds the models as Parquet tables under
`spark/warehouse/<schema>.db/<table>/` (Spark's own layout). Exports, PDFs, checks, the API
snapshot and the syncs read the warehouse with DuckDB SQL; publish_spark_tables gives them
`<schema>.<table>` views over those files in warehouse.duckdb, so the same queries serve both
engines. Tables that dbt partitioned (insert_overwrite by day) keep their partition column in
the directory names (`usage_day=2026-01-05/`), read back with hive_partitioning. The raw layer
gets `raw.<table>` views over every raw file, as the dbt DuckDB target has them.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_billing.defs.ingest.raw_store import RAW_TABLES, RawStore, raw_schema_sql_types


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def spark_table_dirs(warehouse_dir: Path) -> dict[tuple[str, str], Path]:
    """(schema, table) -> directory of every Spark table with data files."""
    tables = {}
    if not warehouse_dir.exists():
        return tables
    for schema_dir in sorted(warehouse_dir.glob("*.db")):
        for table_dir in sorted(schema_dir.iterdir()):
            if table_dir.name.startswith(("_", ".")) or not table_dir.is_dir():
                continue
            if next(table_dir.rglob("*.parquet"), None) is not None:
                tables[(schema_dir.name.removesuffix(".db"), table_dir.name)] = table_dir
    return tables


def parquet_view_sql(directory: Path) -> str:
    """A select over every Parquet file under `directory` (partition directories included)."""
    partitioned = any(child.is_dir() and "=" in child.name for child in directory.iterdir())
    return (
        f"select * from read_parquet({_literal(str(directory / '**' / '*.parquet'))}, "
        f"hive_partitioning = {str(partitioned).lower()}, union_by_name = true)"
    )


def raw_view_sql(store: RawStore, table: str) -> str:
    """The raw table's files, or a typed empty relation before anything landed."""
    directory = store.table_dir(table)
    if directory.exists() and next(directory.rglob("*.parquet"), None) is not None:
        return parquet_view_sql(directory)
    columns = ", ".join(
        f"cast(null as {sql_type}) as {_quoted(name)}"
        for name, sql_type in raw_schema_sql_types(table).items()
    )
    return f"select {columns} where false"


def publish_spark_tables(
    connection: duckdb.DuckDBPyConnection, warehouse_dir: Path, store: RawStore
) -> list[str]:
    """(Re)create a DuckDB view per Spark table and raw table; drop views of tables gone."""
    views = {
        (schema, table): parquet_view_sql(directory)
        for (schema, table), directory in spark_table_dirs(warehouse_dir).items()
    }
    views |= {("raw", table): raw_view_sql(store, table) for table in RAW_TABLES}
    # Views of Spark tables that are gone (a model removed); never the views Python owns
    # (sync.ledger_current lives in the schema of the sync models).
    published_before = connection.execute(
        "select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal and contains(sql, ?)",
        [str(warehouse_dir)],
    ).fetchall()
    for schema, view in published_before:
        if (schema, view) not in views:
            connection.execute(f"drop view {_quoted(schema)}.{_quoted(view)}")
    schemas = {schema for schema, _ in views}
    for schema in sorted(schemas):
        connection.execute(f"create schema if not exists {_quoted(schema)}")
    for (schema, table), sql in sorted(views.items()):
        connection.execute(f"create or replace view {_quoted(schema)}.{_quoted(table)} as {sql}")
    return [f"{schema}.{table}" for schema, table in sorted(views)]
