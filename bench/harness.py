"""One benchmark run: generate data, run every variant on it, check they agree, report.

Variants (each in its own measured process, see measure.py):
  floor           bench/floor.sql on the landing files (the best this machine can do)
  read_landing_files  DuckDB's read_json/read_csv of the same files to Parquet (landing's floor)
  pipeline_full   the Dagster pipeline from empty: landing -> dbt build -> exports, with checks
  incremental     a 1% batch (the next day) on top of the built history, through
                  bench.variants.incremental_build (the run landing_sensor would start)
  batch_alone     the same batch through the whole pipeline into an empty warehouse
  postgres_*      the landed raw tables copied to a local PostgreSQL, `dbt build --target postgres`
  spark_full      the pipeline_full run with BILLING_ENGINE=spark: the same Dagster jobs, dbt on
                  Spark in local mode on this machine (dbt-spark session method, docs/spark.md)
The floor also runs on history + batch and on the batch alone: those are the references the
incremental and batch-alone invoices must equal.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psutil

from bench.measure import Measurement, gib, python_argv, run_measured
from bench.targets import (
    FULL_BUILD_OVER_FLOOR,
    INCREMENTAL_OVER_BATCH,
    LANDING_OVER_READ,
    LANDING_READ_VARIANT,
    PIPELINE_IDS,
    ratio_met,
)
from bench.variants import invoices_from_json

REPO_ROOT = Path(__file__).resolve().parent.parent
HISTORY_START = date(2026, 1, 1)
HISTORY_DAYS = 58  # 2026-01-01 .. 2026-02-27; the batch is the next day, inside the open month
BATCH_DAY = date(2026, 2, 28)
BATCH_SHARE = 0.01
MIN_BATCH = 100  # the generator's minimum
BYTES_PER_EVENT = 140  # landing files on disk, measured on the generator's output
PEER_SIZE_DEFAULT_CAP = 10_000_000
SPARK_SIZE_DEFAULT_CAP = 10_000_000  # a 2-core Spark in local mode; sizes above are opt-in
SLOWEST_DBT_NODES = 20  # per variant in the report; every node is in runs' own results


Invoices = dict[str, tuple[str, Decimal]]


class TotalsDiffer(RuntimeError):
    pass


def parse_size(text: str) -> int:
    """'10K' -> 10_000, '1M' -> 1_000_000, '2.5M', '100000'."""
    cleaned = text.strip().upper().replace("_", "").replace(",", "")
    factor = {"K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}.get(cleaned[-1:], 1)
    number = cleaned[:-1] if factor != 1 else cleaned
    try:
        value = int(Decimal(number) * factor)
    except ArithmeticError:
        raise ValueError(f"not a size: {text!r} (use e.g. 10K, 1M, 10M, 100M)") from None
    if value < MIN_BATCH:
        raise ValueError(f"size must be at least {MIN_BATCH} events, got {text!r}")
    return value


def size_label(events: int) -> str:
    for factor, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if events >= factor and events % factor == 0:
            return f"{events // factor}{suffix}"
    return str(events)


@dataclass
class BenchConfig:
    size: int
    peer_size: int | None  # None: no Postgres peer
    out_dir: Path
    results_dir: Path
    seed: int = 7
    ids: str = PIPELINE_IDS  # datagen.ID_KINDS: uniqueIds as the SDK makes them, or random
    reuse_data: bool = True
    floor_runs: int = 2
    batch_runs: int = 2  # the incremental run and the batch alone, each on batch 1..batch_runs
    spark: bool = False  # the spark_full variant
    dbt_server: bool = True  # pipeline variants fork dbt from a server, as `make dev` runs it
    dbt_server_socket: Path | None = None  # a running server to use instead (the test suite's)


@dataclass
class VariantRun:
    name: str
    title: str
    events: int
    measurement: Measurement
    result: dict
    invoices: Invoices = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return float(self.result.get("wall_s", self.measurement.process_wall_s))

    @property
    def cpu_s(self) -> float:
        """CPU of the timed section (child-reported), plus the Postgres server's when measured,
        plus what the child's own count misses: descendants nobody waited for (Spark's JVM)."""
        server = self.measurement.cpu_s - self.measurement.process_cpu_s
        unwaited = max(0.0, self.measurement.tree_cpu_s - self.measurement.process_cpu_s)
        return float(self.result.get("cpu_s", self.measurement.process_cpu_s)) + server + unwaited

    def to_dict(self) -> dict:
        detail = {k: v for k, v in self.result.items() if k not in ("invoices", "outcomes")}
        if detail.get("dbt"):
            dbt = dict(detail["dbt"])
            dbt["nodes"] = dbt["nodes"][:SLOWEST_DBT_NODES]
            detail["dbt"] = dbt
        return {
            "title": self.title,
            "events": self.events,
            "wall_s": round(self.wall_s, 3),
            "events_per_s": round(self.events / self.wall_s) if self.wall_s else None,
            "cpu_s": round(self.cpu_s, 3),
            **{k: v for k, v in self.measurement.to_dict().items() if k not in ("label", "cpu_s")},
            "invoice_count": len(self.invoices) or None,
            "detail": detail,
        }


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def _generator_fingerprint() -> str:
    source = (REPO_ROOT / "dagster_billing" / "datagen.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def _generate(directory: Path, *, reuse: bool, **params) -> tuple[dict, float, bool]:
    """Generated landing files in `directory`, reused when the same generator and parameters
    already wrote them. Returns (summary, seconds, reused)."""
    from dagster_billing.datagen import generate_events
    from dagster_billing.paths import SEEDS_DIR

    marker = directory / "generated.json"
    wanted = {
        "generator": _generator_fingerprint(),
        **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in params.items()},
    }
    if reuse and marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("params") == wanted:
            return recorded["summary"], recorded["seconds"], True
    if directory.exists():
        shutil.rmtree(directory)
    started = time.perf_counter()
    summary = generate_events(
        directory / "landing",
        accounts_csv=SEEDS_DIR / "accounts.csv",
        meters_csv=SEEDS_DIR / "meters.csv",
        **params,
    ).to_dict()
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"params": wanted, "summary": summary, "seconds": seconds}))
    return summary, seconds, False


def _link_files(source: Path, target: Path, prefix: str = "") -> list[Path]:
    """Hard-link (or copy) every file of `source` into `target`, named `prefix` + its name;
    landing reads them as its own. A name already there is an error, never overwritten."""
    target.mkdir(parents=True, exist_ok=True)
    linked = []
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        destination = target / f"{prefix}{path.name}"
        if destination.exists():
            raise FileExistsError(f"{destination} is already there")
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
        linked.append(destination)
    return linked


def _fresh(directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


class Bench:
    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        # A run with random uniqueIds is kept apart: bench-100M-random-ids.json.
        self.label = size_label(config.size) + (
            "" if config.ids == PIPELINE_IDS else f"-{config.ids}-ids"
        )
        self.root = config.out_dir.resolve() / self.label
        self.logs = self.root / "logs"
        self.results: dict[str, VariantRun] = {}
        self.comparisons: list[dict] = []
        self.generation: dict = {}

    # -- running variants --------------------------------------------------------------------

    def _variant(
        self,
        name: str,
        title: str,
        events: int,
        argv: list[str],
        *,
        result_path: Path,
        env: dict[str, str] | None = None,
        **measure_kwargs,
    ) -> VariantRun:
        say(f"{title} ...")
        measurement = run_measured(
            title, argv, self.logs / f"{name}.log", env=env, **measure_kwargs
        )
        result = json.loads(result_path.read_text())
        run = VariantRun(
            name=name,
            title=title,
            events=events,
            measurement=measurement,
            result=result,
            invoices=invoices_from_json(result.get("invoices", {})),
            outcomes=result.get("outcomes", {}),
        )
        self.results[name] = run
        say(
            f"  {title}: {run.wall_s:.1f} s, {events / run.wall_s:,.0f} events/s, "
            f"peak {gib(measurement.peak_rss_bytes)}, cpu {run.cpu_s:.1f} s"
            + _phase_summary(result)
        )
        return run

    def floor(
        self, name: str, title: str, landing: Path, events: int, *, runs: int = 1
    ) -> VariantRun:
        """The floor script on `landing`; with runs > 1 the fastest run counts (the floor is
        the best this machine can do, and it is cheap enough to repeat on a shared machine)."""
        from dagster_billing.paths import SEEDS_DIR

        return self._fastest(
            name,
            title,
            events,
            runs,
            lambda key: (
                "floor",
                "--landing",
                str(landing),
                "--seeds",
                str(SEEDS_DIR),
                "--database",
                str(self.root / "runs" / f"{key}.duckdb"),
            ),
        )

    def read_landing(self, landing: Path, events: int, *, runs: int = 1) -> VariantRun:
        """DuckDB's read_json/read_csv of the landing files to Parquet: landing's floor."""
        return self._fastest(
            LANDING_READ_VARIANT,
            "DuckDB read of the landing files",
            events,
            runs,
            lambda key: (
                "read-landing",
                "--landing",
                str(landing),
                "--scratch",
                str(self.root / "runs" / key),
            ),
        )

    def _fastest(
        self,
        name: str,
        title: str,
        events: int,
        runs: int,
        variant_args: Callable[[str], tuple[str, ...]],
    ) -> VariantRun:
        """Run `python -m bench.variants *variant_args(key)` `runs` times; the fastest counts."""
        samples = []
        for attempt in range(1, runs + 1):
            key = name if runs == 1 else f"{name}-{attempt}"
            out = self.root / "results" / f"{key}.json"
            samples.append(
                self._variant(
                    key,
                    title if runs == 1 else f"{title}, run {attempt} of {runs}",
                    events,
                    python_argv("bench.variants", *variant_args(key), "--out", str(out)),
                    result_path=out,
                    cwd=REPO_ROOT,
                )
            )
        for sample in samples[1:]:
            if sample.invoices != samples[0].invoices:
                raise TotalsDiffer(f"{name}: the runs disagree with each other")
        return self._keep_fastest(name, samples, title)

    def _keep_fastest(self, name: str, samples: list[VariantRun], title: str) -> VariantRun:
        """The fastest of `samples` as `name`, with every sample's wall and CPU seconds in its
        detail; the samples' own entries go."""
        if len(samples) == 1:
            return samples[0]
        for sample in samples:
            del self.results[sample.name]
        best = min(samples, key=lambda sample: sample.wall_s)
        best.name, best.title = name, title
        best.result["runs_wall_s"] = [round(sample.wall_s, 3) for sample in samples]
        best.result["runs_cpu_s"] = [round(sample.cpu_s, 3) for sample in samples]
        self.results[name] = best
        return best

    def pipeline(
        self,
        name: str,
        title: str,
        data_dir: Path,
        events: int,
        *,
        mode: str = "full",
        new_files: list[Path] | None = None,
        engine: str = "duckdb",
    ) -> VariantRun:
        out = self.root / "results" / f"{name}.json"
        argv = python_argv(
            "bench.variants",
            "pipeline",
            "--data-dir",
            str(data_dir),
            "--mode",
            mode,
            "--engine",
            engine,
            "--dbt-target-path",
            str(self.root / "dbt-target"),
            "--out",
            str(out),
        )
        for path in new_files or []:
            argv += ["--new-file", str(path)]
        if not self.config.dbt_server:
            argv.append("--no-dbt-server")
        elif self.config.dbt_server_socket:
            argv += ["--dbt-server-socket", str(self.config.dbt_server_socket)]
        return self._variant(name, title, events, argv, result_path=out, cwd=REPO_ROOT)

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        config = self.config
        started_at = datetime.now(UTC)
        self.root.mkdir(parents=True, exist_ok=True)
        _fresh(self.logs)
        _fresh(self.root / "results")
        _fresh(self.root / "runs")
        shutil.rmtree(self.root / "dbt-target", ignore_errors=True)
        self._check_disk(config.size)

        batch_events = max(MIN_BATCH, round(config.size * BATCH_SHARE))
        say(f"generating {config.size:,} events of history and a batch of {batch_events:,} ...")
        history, history_s, history_reused = _generate(
            self.root / "data" / "history",
            reuse=config.reuse_data,
            events=config.size,
            seed=config.seed,
            start=HISTORY_START,
            days=HISTORY_DAYS,
            ids=config.ids,
        )
        batch, batch_s, batch_reused = self._generate_batch(1, batch_events)
        self.generation = {
            "ids": config.ids,
            "history_rows": history["total_rows"],
            "history_files": len(history["files"]),
            "history_s": round(history_s, 3),
            "history_reused": history_reused,
            "batch_rows": batch["total_rows"],
            "batch_files": batch["files"],
            "batch_s": round(batch_s, 3),
            "batch_reused": batch_reused,
            "batch_runs": config.batch_runs,
        }
        say(
            f"  history: {history['total_rows']:,} rows in {len(history['files'])} files "
            f"({'reused' if history_reused else f'{history_s:.1f} s'}); "
            f"batch: {batch['total_rows']:,} rows ({', '.join(batch['files'])})"
        )
        history_landing = self.root / "data" / "history" / "landing"

        full_dir = self.root / "runs" / "full"
        _link_files(history_landing, full_dir / "landing")

        self.floor(
            "floor", "floor (DuckDB SQL)", history_landing, config.size, runs=config.floor_runs
        )
        self.read_landing(history_landing, config.size, runs=config.floor_runs)
        self.pipeline("pipeline_full", "pipeline full build", full_dir, config.size)
        self._compare("floor", "pipeline_full")

        if config.peer_size == config.size:
            self._peer(full_dir, config.size, duckdb_variant="pipeline_full")

        if config.spark:
            spark_dir = self.root / "runs" / "spark_full"
            _link_files(history_landing, spark_dir / "landing")
            self.pipeline(
                "spark_full", "Spark: pipeline full build", spark_dir, config.size, engine="spark"
            )
            self._compare("pipeline_full", "spark_full")

        self._batch_samples(full_dir, batch_events)

        if config.peer_size is not None and config.peer_size != config.size:
            self._peer_on_own_data(config.peer_size)

        report = self._report(started_at)
        return report

    def _batch_dir(self, sample: int) -> Path:
        return self.root / "data" / ("batch" if sample == 1 else f"batch-{sample}")

    def _generate_batch(self, sample: int, events: int) -> tuple[dict, float, bool]:
        """The 1% batch of sample `sample`: the same day, another seed (other ids, other values)."""
        return _generate(
            self._batch_dir(sample),
            reuse=self.config.reuse_data,
            events=events,
            seed=self.config.seed + sample,
            start=BATCH_DAY,
            days=1,
            csv_share=0.0,
            ids=self.config.ids,
        )

    def _batch_samples(self, full_dir: Path, events: int) -> None:
        """The incremental run and the batch alone, `batch_runs` times each; the fastest counts,
        as for the floor. A run of either cannot be repeated on the same data (the incremental
        one changes the warehouse it runs on; copying it first would take as much disk again),
        so sample k lands batch k: the incremental run on history plus batches 1..k-1, the batch
        alone into an empty warehouse. The two variants of a sample run one after the other, so
        that both meet the same phase of the machine. Every sample's invoices are compared with
        the floor's on the same events (history plus batches 1..k; batch k); sample 1's floors
        are the ones reported."""
        titles = {"incremental": "incremental (+1% batch)", "batch_alone": "batch alone (pipeline)"}
        samples: dict[str, list[VariantRun]] = {name: [] for name in titles}
        for sample in range(1, self.config.batch_runs + 1):
            suffix = "" if sample == 1 else f"-{sample}"
            of = (
                "" if self.config.batch_runs == 1 else f", run {sample} of {self.config.batch_runs}"
            )
            if sample > 1:
                self._generate_batch(sample, events)
            batch_landing = self._batch_dir(sample) / "landing"
            # Batch k's files are named apart from batch 1's (the generator names them by day).
            prefix = "" if sample == 1 else f"batch{sample}_"
            new_files = _link_files(batch_landing, full_dir / "landing", prefix)
            self.floor(
                f"floor_history_batch{suffix}",
                "floor, history + batch" + ("" if sample == 1 else f"es 1-{sample}"),
                full_dir / "landing",
                self.config.size + sample * events,
            )
            samples["incremental"].append(
                self.pipeline(
                    f"incremental{suffix}",
                    titles["incremental"] + of,
                    full_dir,
                    events,
                    mode="incremental",
                    new_files=new_files,
                )
            )
            self._compare(f"floor_history_batch{suffix}", f"incremental{suffix}")
            self.floor(
                f"floor_batch{suffix}",
                "floor, batch alone" if sample == 1 else f"floor, batch {sample} alone",
                batch_landing,
                events,
            )
            alone_dir = self.root / "runs" / f"batch_alone{suffix}"
            _link_files(batch_landing, alone_dir / "landing")
            samples["batch_alone"].append(
                self.pipeline(f"batch_alone{suffix}", titles["batch_alone"] + of, alone_dir, events)
            )
            self._compare(f"floor_batch{suffix}", f"batch_alone{suffix}")
            if sample > 1:
                del (
                    self.results[f"floor_history_batch{suffix}"],
                    self.results[f"floor_batch{suffix}"],
                )
        for name, runs in samples.items():
            self._keep_fastest(name, runs, titles[name])

    def _peer_on_own_data(self, events: int) -> None:
        say(f"peer at {events:,} events: generating and building with DuckDB first ...")
        peer_root = self.root / "data" / f"peer-{size_label(events)}"
        _summary, _seconds, _reused = _generate(
            peer_root,
            reuse=self.config.reuse_data,
            events=events,
            seed=self.config.seed,
            start=HISTORY_START,
            days=HISTORY_DAYS,
            ids=self.config.ids,
        )
        peer_dir = self.root / "runs" / "peer_duckdb"
        _link_files(peer_root / "landing", peer_dir / "landing")
        self.pipeline(
            "peer_duckdb", f"pipeline full build ({size_label(events)})", peer_dir, events
        )
        self._peer(peer_dir, events, duckdb_variant="peer_duckdb")

    def _peer(self, data_dir: Path, events: int, *, duckdb_variant: str) -> None:
        from bench.postgres import LocalPostgres, postgres_invoices, postgres_outcomes

        say("starting a local PostgreSQL server ...")
        with LocalPostgres(self.root / "postgres") as pg:
            server = {
                "extra_processes": pg.server_processes,
                "extra_cpu_s": pg.server_cpu_s,
            }
            copy_out = self.root / "results" / "postgres_copy.json"
            self._variant(
                "postgres_copy",
                "postgres: copy raw tables",
                events,
                python_argv(
                    "bench.variants",
                    "pg-copy",
                    "--duckdb",
                    str(data_dir / "warehouse.duckdb"),
                    "--scratch",
                    str(self.root / "runs" / "pg-copy"),
                    "--out",
                    str(copy_out),
                ),
                result_path=copy_out,
                env=pg.env,
                cwd=REPO_ROOT,
                **server,
            )
            dbt_out = self.root / "results" / "postgres_dbt.json"
            run = self._variant(
                "postgres_dbt",
                "postgres: dbt build",
                events,
                python_argv(
                    "bench.variants",
                    "dbt",
                    "--target",
                    "postgres",
                    "--dbt-target-path",
                    str(self.root / "dbt-target" / "postgres"),
                    "--out",
                    str(dbt_out),
                ),
                result_path=dbt_out,
                env={**pg.env, "BILLING_DATA_DIR": str(data_dir)},
                cwd=REPO_ROOT,
                **server,
            )
            run.invoices = postgres_invoices(pg)
            run.outcomes = postgres_outcomes(pg)
            run.result["duckdb_variant"] = duckdb_variant
            run.result["server_settings"] = _server_settings()
        self._compare(duckdb_variant, "postgres_dbt")

    # -- checks and report -------------------------------------------------------------------

    def _compare(self, reference: str, candidate: str) -> None:
        comparison = compare_answers(
            reference,
            self.results[reference].invoices,
            self.results[reference].outcomes,
            candidate,
            self.results[candidate].invoices,
            self.results[candidate].outcomes,
        )
        self.comparisons.append(comparison)
        verdict = "identical" if comparison["identical"] else "DIFFERENT"
        say(
            f"  {candidate} vs {reference}: {comparison['invoices']} invoices, "
            f"grand total {comparison['grand_totals']}: {verdict}"
        )
        if not comparison["identical"]:
            for line in comparison["differences"][:10]:
                say(f"    {line}")

    def _check_disk(self, events: int) -> None:
        free = shutil.disk_usage(self.root).free
        needed = events * BYTES_PER_EVENT * 3  # landing files, DuckDB files, Postgres copy
        say(
            f"disk: {free / 1e9:.0f} GB free at {self.root}, this run needs about {needed / 1e9:.0f} GB"
        )
        if free < needed:
            raise SystemExit(
                f"not enough disk space for {size_label(events)} events at {self.root}"
            )

    def _report(self, started_at: datetime) -> dict:
        runs = self.results
        ratios: dict[str, float | None] = {
            "pipeline_over_floor": _ratio(runs, "pipeline_full", "floor"),
            "landing_over_read": _landing_over_read(runs),
            "incremental_over_batch_alone": _ratio(runs, "incremental", "batch_alone"),
            "postgres_over_duckdb": None,
            "spark_over_duckdb": _ratio(runs, "spark_full", "pipeline_full"),
        }
        # CPU seconds (the variant's processes, all cores) move less than wall time when the
        # machine is shared; they are reported next to the wall-time ratios.
        ratios_cpu = {
            "pipeline_over_floor": _ratio(runs, "pipeline_full", "floor", cpu=True),
            "incremental_over_batch_alone": _ratio(runs, "incremental", "batch_alone", cpu=True),
            "spark_over_duckdb": _ratio(runs, "spark_full", "pipeline_full", cpu=True),
        }
        if "postgres_dbt" in runs:
            pg_dbt = runs["postgres_dbt"].result["dbt"]["elapsed_s"]
            duck = runs[runs["postgres_dbt"].result["duckdb_variant"]].result.get("dbt") or {}
            if duck.get("elapsed_s"):
                ratios["postgres_over_duckdb"] = round(pg_dbt / duck["elapsed_s"], 2)
        from bench.variants import DBT_REBUILDS_FULLY

        identical = all(c["identical"] for c in self.comparisons)
        report = {
            "size": self.config.size,
            "label": self.label,
            "peer_size": self.config.peer_size,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "generation": self.generation,
            "variants": {name: run.to_dict() for name, run in runs.items()},
            "ratios": ratios,
            "ratios_cpu": ratios_cpu,
            "targets": {
                "pipeline_over_floor": {
                    "target": FULL_BUILD_OVER_FLOOR,
                    "value": ratios["pipeline_over_floor"],
                    "met": ratio_met(ratios["pipeline_over_floor"], FULL_BUILD_OVER_FLOOR),
                    "note": "the target is stated for 100M events",
                },
                "landing_over_read": {
                    "target": LANDING_OVER_READ,
                    "value": ratios["landing_over_read"],
                    "met": ratio_met(ratios["landing_over_read"], LANDING_OVER_READ),
                    "note": "the pipeline's landing step / DuckDB's read of the same files",
                },
                "incremental_over_batch_alone": {
                    "target": INCREMENTAL_OVER_BATCH,
                    "value": ratios["incremental_over_batch_alone"],
                    "met": ratio_met(
                        ratios["incremental_over_batch_alone"], INCREMENTAL_OVER_BATCH
                    ),
                    "meaningful": not DBT_REBUILDS_FULLY,
                    "note": (
                        "not yet meaningful: on this branch dbt rebuilds every model from raw "
                        "on each run, so the incremental run is a full rebuild plus landing"
                        if DBT_REBUILDS_FULLY
                        else "the target is stated for 100M events of history"
                    ),
                },
            },
            "checks": {"identical": identical, "comparisons": self.comparisons},
        }
        return report


def _ratio(
    runs: dict[str, VariantRun], numerator: str, denominator: str, *, cpu: bool = False
) -> float | None:
    if numerator not in runs or denominator not in runs:
        return None
    if cpu:
        return round(runs[numerator].cpu_s / max(runs[denominator].cpu_s, 1e-9), 2)
    return round(runs[numerator].wall_s / runs[denominator].wall_s, 2)


def _landing_over_read(runs: dict[str, VariantRun]) -> float | None:
    """The full build's landing phase over DuckDB's read of the same files (target 2)."""
    if LANDING_READ_VARIANT not in runs or "pipeline_full" not in runs:
        return None
    landing = (runs["pipeline_full"].result.get("phases") or {}).get("landing")
    read = runs[LANDING_READ_VARIANT].wall_s
    return round(landing / read, 2) if landing and read else None


def _phase_summary(result: dict) -> str:
    phases = result.get("phases")
    if not phases:
        return ""
    order = ("landing", "dbt", "exports", "checks", "plans")
    parts = [f"{name} {phases[name]:.1f} s" for name in order if name in phases]
    return " (" + ", ".join(parts) + ")"


def _server_settings() -> dict:
    from bench.postgres import SERVER_SETTINGS

    return dict(SERVER_SETTINGS)


def _machine() -> dict:
    import dagster
    import duckdb
    from dbt.version import __version__ as dbt_version

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": duckdb.__version__,
        "dagster": dagster.__version__,
        "dbt_core": dbt_version,
        "load_average_at_end": os.getloadavg(),
    }


def compare_answers(
    reference: str,
    reference_invoices: Invoices,
    reference_outcomes: dict[str, int],
    candidate: str,
    candidate_invoices: Invoices,
    candidate_outcomes: dict[str, int],
) -> dict:
    """Invoice totals must be equal as exact Decimals (same ids, currencies and totals), and the
    outcome counts (accepted / duplicate / quarantined per reason) must match."""
    differences = []
    for invoice_id in sorted(set(reference_invoices) | set(candidate_invoices)):
        expected = reference_invoices.get(invoice_id)
        actual = candidate_invoices.get(invoice_id)
        if expected != actual:
            differences.append(
                f"invoice {invoice_id}: {reference} {expected}, {candidate} {actual}"
            )
    for key in sorted(set(reference_outcomes) | set(candidate_outcomes)):
        expected_count = reference_outcomes.get(key, 0)
        actual_count = candidate_outcomes.get(key, 0)
        if expected_count != actual_count:
            differences.append(
                f"outcome {key}: {reference} {expected_count}, {candidate} {actual_count}"
            )
    grand: dict[str, Decimal] = {}
    for currency, total in reference_invoices.values():
        grand[currency] = grand.get(currency, Decimal(0)) + total
    return {
        "reference": reference,
        "candidate": candidate,
        "invoices": len(reference_invoices),
        "grand_totals": {c: f"{t:f}" for c, t in sorted(grand.items())},
        "identical": not differences and bool(reference_invoices),
        "differences": differences[:50],
    }


def default_peer_size(size: int) -> int:
    return min(size, PEER_SIZE_DEFAULT_CAP)


def main_run(config: BenchConfig) -> int:
    """Run, print the table, write JSON and PNG, print issue 23's targets over every result file
    beside it; exit status 1 when answers differ."""
    from bench.report import print_table, write_chart
    from bench.targets import print_summary

    bench = Bench(config)
    report = bench.run()
    config.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = config.results_dir / f"bench-{bench.label}.json"
    png_path = config.results_dir / f"bench-{bench.label}.png"
    json_path.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    write_chart(report, png_path)
    print_table(report)
    say(f"results: {json_path}, {png_path}")
    print_summary(config.results_dir)
    if not report["checks"]["identical"]:
        print(
            "\nFAILED: the variants did not produce identical invoice totals and outcomes "
            "(see checks.comparisons in the JSON).",
            file=sys.stderr,
        )
        return 1
    return 0
