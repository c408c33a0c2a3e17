"""`billing-dbt`: dbt, keeping the Spark profile's ANSI mode.

dbt-spark 1.11 sets `spark.sql.ansi.enabled=false` in the server-side parameters of every Spark
profile, overriding the profile (`SparkCredentials.__post_init__`, added with pyspark 4 support
in dbt-labs/dbt-adapters#1537 because its own seed loader casts the text 'None' to dates). In
`session` mode those parameters are re-applied before every statement, so a `set` in a hook does
not last either. Without ANSI mode Spark turns a decimal overflow into NULL instead of an error;
money must fail loudly. This entry point restores the profile's value and then runs dbt's own CLI.

It touches one dbt-spark member, so the project checks the outcome itself: the on-run-start hook
`check_engine_settings` (macros/spark.sql) fails every Spark run whose session does not have
ANSI mode on and decimal precision loss off. An upgrade that breaks this fails the first run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

ANSI_MODE = "spark.sql.ansi.enabled"
# Targets of dbt_project/profiles.yml that are not Spark: no need to import dbt-spark (0.2 s).
NOT_SPARK_TARGETS = ("duckdb", "postgres")


def keep_profile_ansi_mode() -> None:
    """Make dbt-spark's credentials keep the profile's `spark.sql.ansi.enabled`."""
    try:
        from dbt.adapters.spark.connections import SparkCredentials
    except ImportError:  # dbt-spark not installed: nothing to keep
        return
    if getattr(SparkCredentials.__post_init__, "keeps_profile_ansi_mode", False):
        return
    upstream = SparkCredentials.__post_init__

    def __post_init__(self) -> None:
        wanted = self.server_side_parameters.get(ANSI_MODE)
        upstream(self)
        if wanted is not None:
            self.server_side_parameters[ANSI_MODE] = str(wanted).lower()

    __post_init__.keeps_profile_ansi_mode = True
    SparkCredentials.__post_init__ = __post_init__


def target_of(args: Sequence[str]) -> str:
    """The profile target a dbt command line runs on: --target/-t, else what profiles.yml
    reads (BILLING_ENGINE, default duckdb)."""
    for index, arg in enumerate(args):
        if arg in ("--target", "-t") and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return os.environ.get("BILLING_ENGINE") or "duckdb"


def run_dbt(argv: Sequence[str]) -> int:
    """dbt's own CLI on `argv` (argv[0] is the program name), keeping the Spark profile's ANSI
    mode; its exit code."""
    from dagster_billing.lib.dbt_server import exit_status

    if target_of(argv[1:]) not in NOT_SPARK_TARGETS:
        keep_profile_ansi_mode()
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
