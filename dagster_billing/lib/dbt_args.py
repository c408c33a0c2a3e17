from __future__ import annotations


def dbt_build_args(*, full_refresh: bool = False) -> list[str]:
    """Arguments of the `dbt build` that Dagster runs for the selected assets."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    return args
