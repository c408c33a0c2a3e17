"""The peer: a throwaway local PostgreSQL server, the landed raw tables copied into it from the
DuckDB warehouse, and the same dbt project built on it (`dbt build --target postgres`).

The server lives in a directory of the bench output, listens on a free loopback port with a
password generated for the run, and is stopped (and its directory removed) at the end. As root
it runs as the `postgres` system user, because initdb refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psutil

# The peer gets the raw tables that landing writes and nothing else, with the raw layer's
# engine-neutral column types (models/staging/_raw__sources.yml, through raw_schema_sql_types) as
# PostgreSQL spells them; decimal(p,s), bigint and timestamp are the same.
POSTGRES_TYPES = {"string": "varchar", "int": "integer"}


def raw_table_columns(table: str) -> dict[str, str]:
    """A raw table's columns and their PostgreSQL types, from the one definition of the layer."""
    from dagster_billing.defs.ingest.raw_store import raw_schema_sql_types

    return {
        name: POSTGRES_TYPES.get(data_type, data_type)
        for name, data_type in raw_schema_sql_types(table).items()
    }


# A server tuned for one analytical user on this machine (defaults are sized for tiny OLTP boxes).
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "8GB",
    "max_parallel_workers_per_gather": "2",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "8GB",
    "jit": "off",
}
DATABASE = "billing"
USER = "billing"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(
        f"PostgreSQL's {name} was not found: install the server (apt-get install -y postgresql) "
        "or run the bench with --no-postgres"
    )


def postgres_available() -> bool:
    try:
        _server_bin("initdb")
        _server_bin("pg_ctl")
    except RuntimeError:
        return False
    return True


@dataclass
class LocalPostgres:
    """initdb + pg_ctl in `root`; use as a context manager (`with LocalPostgres(dir) as pg:`)."""

    root: Path
    port: int = 0
    password: str = ""

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        """What dbt's `postgres` output (dbt_project/profiles.yml) reads."""
        return {
            "BILLING_PG_HOST": "127.0.0.1",
            "BILLING_PG_PORT": str(self.port),
            "BILLING_PG_USER": USER,
            "BILLING_PG_PASSWORD": self.password,
            "BILLING_PG_DATABASE": DATABASE,
        }

    @classmethod
    def from_env(cls, env: dict[str, str]) -> LocalPostgres:
        """A handle on a running server described by `env` (what `.env` returns)."""
        return cls(
            root=Path("."), port=int(env["BILLING_PG_PORT"]), password=env["BILLING_PG_PASSWORD"]
        )

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, password=self.password, dbname=DATABASE
        )

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.port = self.port or _free_port()
        self.password = secrets.token_urlsafe(24)
        password_file = self.root / "pwfile"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            server_user = pwd.getpwnam("postgres")
            for path in (self.root, password_file):
                os.chown(path, server_user.pw_uid, server_user.pw_gid)
        self._run(
            [
                _server_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        password_file.unlink()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.root}",
            *(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items()),
        ]
        self._run(
            [
                _server_bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "server.log"),
                "-o",
                " ".join(options),
                "-w",
                "start",
            ]
        )
        self._create_database()

    def _create_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                connection = psycopg2.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=USER,
                    password=self.password,
                    dbname="postgres",
                )
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"create database {DATABASE}")
        connection.close()

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run([_server_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def server_processes(self) -> list[psutil.Process]:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            return [postmaster, *postmaster.children(recursive=True)]
        except (OSError, ValueError, psutil.NoSuchProcess):
            return []

    def server_cpu_s(self) -> float:
        """CPU seconds of the server so far: live processes plus exited backends (waited for by
        the postmaster)."""
        total = 0.0
        for index, process in enumerate(self.server_processes()):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
            if index == 0:
                total += times.children_user + times.children_system
        return total

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def copy_raw_tables(duckdb_path: Path, pg: LocalPostgres, scratch: Path) -> dict[str, int]:
    """Copy raw.* from the DuckDB warehouse into Postgres (DuckDB writes CSV, psycopg2 COPYs it
    in), then ANALYZE so the planner has statistics. Returns rows per table."""
    import duckdb

    from dagster_billing.defs.ingest.raw_store import RAW_TABLES
    from dagster_billing.lib.duckdb_config import duckdb_config

    scratch.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    source = duckdb.connect(str(duckdb_path), read_only=True, config=duckdb_config())
    target = pg.connect()
    try:
        with target.cursor() as cursor:
            cursor.execute("create schema if not exists raw")
            for table in RAW_TABLES:
                columns = ", ".join(
                    f"{name} {sql}" for name, sql in raw_table_columns(table).items()
                )
                cursor.execute(f"drop table if exists raw.{table}")
                cursor.execute(f"create table raw.{table} ({columns})")
            target.commit()
            for table in RAW_TABLES:
                names = ", ".join(raw_table_columns(table))
                csv_path = scratch / f"{table}.csv"
                source.execute(
                    f"copy (select {names} from raw.{table}) to '{csv_path}' (header false)"
                )
                with csv_path.open("rb") as handle:
                    cursor.copy_expert(
                        f"copy raw.{table} ({names}) from stdin with (format csv)", handle
                    )
                csv_path.unlink()
                counts[table] = cursor.rowcount
            target.commit()
            target.autocommit = True
            for table in RAW_TABLES:
                cursor.execute(f"analyze raw.{table}")
    finally:
        target.close()
        source.close()
    return counts


def postgres_invoices(pg: LocalPostgres) -> dict[str, tuple[str, Decimal]]:
    connection = pg.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("select invoice_id, currency, subtotal from billing.fct_invoices")
            return {invoice_id: (currency, total) for invoice_id, currency, total in cursor}
    finally:
        connection.close()


def postgres_outcomes(pg: LocalPostgres) -> dict[str, int]:
    connection = pg.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select outcome, reason, count(*) from billing.fct_usage_event_outcomes "
                "group by outcome, reason"
            )
            return outcome_counts(cursor.fetchall())
    finally:
        connection.close()


def outcome_counts(rows) -> dict[str, int]:
    """{"accepted": n, "duplicate": n, "quarantined:<reason>": n} from (outcome, reason, n) rows."""
    counts: dict[str, int] = {}
    for outcome, reason, count in rows:
        key = outcome if outcome != "quarantined" else f"{outcome}:{reason}"
        counts[key] = counts.get(key, 0) + int(count)
    return counts
