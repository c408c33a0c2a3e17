"""`python -m bench --size 10M`: see bench/harness.py and the README's Benchmark section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.harness import (
    SPARK_SIZE_DEFAULT_CAP,
    BenchConfig,
    default_peer_size,
    main_run,
    parse_size,
)
from bench.targets import PIPELINE_IDS
from dagster_billing.datagen import ID_KINDS

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Floor vs pipeline vs incremental vs Postgres on the same generated events.",
    )
    parser.add_argument("--size", default="10M", help="events to generate: 10K, 1M, 10M, 100M")
    parser.add_argument(
        "--peer-size",
        default=None,
        help="events for the Postgres peer (default: the size, at most 10M; smaller sizes get "
        "their own data and a DuckDB build to compare with)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the Postgres peer")
    parser.add_argument(
        "--spark",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the same pipeline with BILLING_ENGINE=spark (default: on up to 10M events)",
    )
    parser.add_argument(
        "--dbt-server",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pipeline variants start dbt from a dbt fork server, as make dev does (default on)",
    )
    parser.add_argument(
        "--dbt-server-socket",
        type=Path,
        default=None,
        help="fork dbt from a server already listening at this socket instead of starting one "
        "per variant (its CPU is not counted: for the test suite)",
    )
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out", help="data and runs")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ids",
        choices=ID_KINDS,
        default=PIPELINE_IDS,
        help="uniqueIds as the SDK makes them (UUIDv7: time-ordered, the default) or random; "
        "a random-id run writes bench-<size>-random-ids.json",
    )
    parser.add_argument(
        "--floor-runs",
        type=int,
        default=2,
        help="run the floor this many times and keep the fastest (default 2)",
    )
    parser.add_argument(
        "--batch-runs",
        type=int,
        default=2,
        help="run the incremental run and the batch alone this many times, each time with a new "
        "1%% batch, and keep the fastest of each (default 2)",
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="generate data even if a matching set exists"
    )
    args = parser.parse_args(argv)

    size = parse_size(args.size)
    if args.no_postgres:
        peer_size = None
    elif args.peer_size:
        peer_size = parse_size(args.peer_size)
    else:
        peer_size = default_peer_size(size)
    if peer_size is not None:
        from bench.postgres import postgres_available

        if not postgres_available():
            parser.error(
                "PostgreSQL server binaries not found: apt-get install -y postgresql, "
                "or pass --no-postgres"
            )
    config = BenchConfig(
        size=size,
        peer_size=peer_size,
        out_dir=args.out_dir,
        results_dir=args.results_dir,
        seed=args.seed,
        ids=args.ids,
        reuse_data=not args.regenerate,
        floor_runs=max(1, args.floor_runs),
        batch_runs=max(1, args.batch_runs),
        spark=size <= SPARK_SIZE_DEFAULT_CAP if args.spark is None else args.spark,
        dbt_server=args.dbt_server,
        dbt_server_socket=args.dbt_server_socket,
    )
    return main_run(config)


if __name__ == "__main__":
    sys.exit(main())
