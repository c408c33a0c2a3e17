"""`billing-dbt`: dbt's own CLI, with four adjustments of this project.

- On Spark, the profile's ANSI mode is kept (dbt-spark forces it off: `lib/dbt_spark.py`).
- On DuckDB, dbt's saved parse does not depend on the warehouse's file path
  (`parse_state_ignores_warehouse_path`), so a new warehouse or a copy of one reuses the parse
  of another instead of parsing the whole project again (3-4 s of CPU).
- Jinja templates compiled once are reused for the same source (`lib/dbt_warmup.py`), within
  the invocation and, through the fork server, across invocations.
- Debug events that no logger would write are not formatted (`lib/dbt_events.py`).

Through the dbt fork server when BILLING_DBT_SERVER names a running one (`lib/dbt_server.py`),
else dbt in this process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# Targets of dbt_project/profiles.yml that are not Spark: no need to import dbt-spark (0.2 s).
NOT_SPARK_TARGETS = ("duckdb", "postgres")
# The DuckDB profile's key that names the warehouse file (BILLING_DATA_DIR/warehouse.duckdb).
WAREHOUSE_PATH_KEY = "path"


def parse_state_ignores_warehouse_path() -> None:
    """Leave the DuckDB file's path out of the profile hash dbt saves with its parse.

    dbt discards its saved parse (partial_parse.msgpack) and parses every file again when the
    hash of the profile's connection info differs from the one saved with it
    (`ManifestLoader.build_manifest_state_check`); on DuckDB that includes `path`, so every
    data directory (each test's warehouse, a `billing simulate` copy) paid a full parse. What
    dbt parses does not depend on that path: no model, macro or YAML file of this project reads
    `target.path` while parsing (the raw layer's location is read at run time, in
    `stage_raw_sources`). Every other check of the saved parse still applies: dbt's version,
    --vars, the other connection keys, env vars read by dbt_project.yml (BILLING_SEEDS_DIR) and
    each file's checksum and env vars.
    """
    from dbt.contracts.files import FileHash
    from dbt.parser.manifest import ManifestLoader

    upstream = ManifestLoader.build_manifest_state_check
    if getattr(upstream, "ignores_warehouse_path", False):
        return

    def build_manifest_state_check(self):
        state_check = upstream(self)
        credentials = self.root_project.credentials
        if credentials.type == "duckdb":
            keys = sorted(
                (key, value)
                for key, value in credentials.connection_info()
                if key != WAREHOUSE_PATH_KEY
            )
            state_check.profile_hash = FileHash.from_contents(repr(keys))
        return state_check

    build_manifest_state_check.ignores_warehouse_path = True
    ManifestLoader.build_manifest_state_check = build_manifest_state_check


def target_of(args: Sequence[str]) -> str:
    """The profile target a dbt command line runs on: --target/-t, else what profiles.yml
    reads (BILLING_ENGINE, default duckdb)."""
    for index, arg in enumerate(args):
        if arg in ("--target", "-t") and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return os.environ.get("BILLING_ENGINE") or "duckdb"


def adjust_dbt(target: str) -> None:
    """This project's adjustments of dbt for a run on `target` (see the module docstring)."""
    from dagster_billing.lib.dbt_events import skip_unlogged_debug_events
    from dagster_billing.lib.dbt_spark import keep_profile_ansi_mode
    from dagster_billing.lib.dbt_warmup import reuse_compiled_templates

    parse_state_ignores_warehouse_path()
    reuse_compiled_templates()
    skip_unlogged_debug_events()
    if target not in NOT_SPARK_TARGETS:
        keep_profile_ansi_mode()


def run_dbt(argv: Sequence[str]) -> int:
    """dbt's own CLI on `argv` (argv[0] is the program name), adjusted; its exit code."""
    from dagster_billing.lib.dbt_server import exit_status

    adjust_dbt(target_of(argv[1:]))
    from dbt.cli.main import cli

    try:
        cli(args=list(argv[1:]), prog_name="dbt")
    except SystemExit as stop:
        return exit_status(stop)
    return 0


def main() -> None:
    """`billing-dbt`: through the dbt fork server when BILLING_DBT_SERVER names a running one
    (lib/dbt_server.py), else dbt in this process."""
    from dagster_billing.lib.dbt_server import SERVER_ENV, run_through_server

    socket_path = os.environ.get(SERVER_ENV)
    code = run_through_server(socket_path, sys.argv) if socket_path else None
    sys.exit(run_dbt(sys.argv) if code is None else code)


if __name__ == "__main__":
    main()
