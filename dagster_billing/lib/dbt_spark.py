"""dbt on Spark keeping the profile's ANSI mode (applied by `billing-dbt`, lib/dbt_cli.py).

dbt-spark 1.11 sets `spark.sql.ansi.enabled=false` in the server-side parameters of every Spark
profile, overriding the profile (`SparkCredentials.__post_init__`, added with pyspark 4 support
in dbt-labs/dbt-adapters#1537 because its own seed loader casts the text 'None' to dates). In
`session` mode those parameters are re-applied before every statement, so a `set` in a hook does
not last either. Without ANSI mode Spark turns a decimal overflow into NULL instead of an error;
money must fail loudly. `keep_profile_ansi_mode` restores the profile's value.

It touches one dbt-spark member, so the project checks the outcome itself: the on-run-start hook
`check_engine_settings` (macros/spark.sql) fails every Spark run whose session does not have
ANSI mode on and decimal precision loss off. An upgrade that breaks this fails the first run.
"""

from __future__ import annotations

ANSI_MODE = "spark.sql.ansi.enabled"


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
