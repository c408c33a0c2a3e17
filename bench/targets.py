"""Issue 23's performance targets, judged against the result files in bench/results/.

    .venv/bin/python -m bench.targets [--results-dir DIR]     # make bench-summary

TARGETS declares each target: the result files and fields it reads, its checks (comparison,
threshold, unit) and the conditions the issue states for it. `evaluate` gives, per target, the
figure, the file it came from and one of four verdicts:

  met / missed          measured under the target's conditions; every check passed / one did not
  measured differently  a file has a figure, but not under the target's conditions (another size,
                        runner, probe count, load, worker count or machine): the note says what
                        differed, and the target is neither met nor missed
  not measured          no result file has the figure

`python -m bench`, bench/ingest_load.py and bench/ingest_latency.py print the table at the end;
docs/benchmarks.md carries it as Markdown (scripts/generate_docs.py). The thresholds below are
also what the bench records in each run and what the docs' per-run tables judge by.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GIB = 1024**3
CORES = 2  # "all on this 2-core machine"

MET, MISSED, DIFFERENT, NOT_MEASURED = "met", "missed", "measured differently", "not measured"

FULL_BUILD_SIZE = 100_000_000
FULL_BUILD_OVER_FLOOR = 2.0
FULL_BUILD_PEAK_RSS_GIB = 12.0
LANDING_OVER_READ = 1.2
# The bench variant target 2 reads: DuckDB's read_json/read_csv of the same landing files to
# Parquet, timed alone (bench/floor.py read_landing).
LANDING_READ_VARIANT = "read_landing_files"
# The same bullet of the issue asks that int_usage_events_classified be "no longer the top node"
# of the full build: read as its time over the slowest other dbt node's, at most 1x.
CLASSIFIED_NODE = "model.billing.int_usage_events_classified"
CLASSIFIED_OVER_NEXT = 1.0
BATCH_ALONE_EVENTS = 100_000
BATCH_ALONE_S = 12.0
INCREMENTAL_OVER_BATCH = 1.3
FLAT_SIZES = (50_000_000, 100_000_000)
FLAT_TOLERANCE = 1.1  # our reading of "flat": the 100M ratio at most 10 % above the 50M one
LATENCY_MEDIAN_S = 10.0
LATENCY_P99_S = 20.0
LATENCY_PROBES = 50
LATENCY_LOAD_EVENTS_PER_S = 1_000  # the steady load the probes are sent under
INGEST_EVENTS_PER_S = 100_000
INGEST_P99_MS = 50.0
INGEST_WORKERS = 2
INGEST_BATCH = (500, 1_000)
# The uniqueIds the load generator sends to judge 6: time-ordered, as the SDK makes them
# (UUIDv7). Random ones (uuid4) are reported as measured differently, as are results from before
# the generator had a choice (no `ids` field), whose ids were sequential (decision 118).
INGEST_IDS = "time-ordered"
# The uniqueIds of the pipeline bench's data that judge 4 and 4b: time-ordered, as the SDK makes
# them. The lookup of earlier arrivals reads the files whose id range holds the batch's ids
# (decision 119), so the figure depends on them; 4r reports random ids (uuid4-like) alongside.
# Results from before the generator had a choice (no generation.ids) had random ids.
PIPELINE_IDS = "time-ordered"


def pipeline_ids(report: dict) -> str:
    """The uniqueIds of a pipeline bench run's data (`random` before the generator said)."""
    return report.get("generation", {}).get("ids", "random")


def ingest_ids(case: dict) -> str:
    """The uniqueIds an ingest_load case sent (`sequential` before the load generator said)."""
    return case.get("ids", "sequential")


@dataclass(frozen=True)
class Check:
    """One comparison of a figure with its threshold; `unit` is printed right after the number."""

    label: str
    op: str  # "<=", ">=" or "=="
    threshold: float
    unit: str
    digits: int = 2

    def passes(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">=":
            return value >= self.threshold
        return value == self.threshold

    def goal(self) -> str:
        thousands = self.threshold >= 1000 and self.threshold % 1000 == 0
        number = f"{self.threshold / 1000:g}K" if thousands else f"{self.threshold:g}"
        threshold = number + self.unit
        if self.op == "==":
            return threshold
        return f"{self.label} {self.op} {threshold}".strip()

    def show(self, value: float) -> str:
        return f"{self.label} {value:,.{self.digits}f}{self.unit}".strip()


@dataclass
class Measured:
    """What a target's reader found: one value per check (None: not in any file), the file(s),
    the conditions that differ from the target's, and a note."""

    values: tuple[float | None, ...]
    source: str = "-"
    differs: list[str] = field(default_factory=list)
    note: str = ""
    figure: str = ""  # instead of the checks' own formatting


@dataclass(frozen=True)
class Target:
    key: str
    title: str
    files: str
    fields: tuple[str, ...]
    conditions: str  # as the issue states them, and how a figure is picked
    checks: tuple[Check, ...]
    measure: Callable[[Path], Measured]  # reads `fields` of `files`
    goal: str = ""  # instead of the checks' own

    def goal_text(self) -> str:
        return self.goal or ", ".join(check.goal() for check in self.checks)


@dataclass(frozen=True)
class Outcome:
    key: str
    title: str
    goal: str
    status: str
    figure: str
    source: str
    note: str
    values: tuple[float | None, ...]


def ratio_met(ratio: float | None, threshold: float) -> bool | None:
    """A ratio against its threshold alone, as one run records it (no conditions checked)."""
    return None if ratio is None else ratio <= threshold


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _cores(cpus: int | None) -> list[str]:
    return [] if cpus == CORES else [f"{cpus} cores (target {CORES})"]


def _bench_runs(results_dir: Path, ids: str | None = None) -> list[tuple[Path, dict]]:
    """The pipeline bench runs by size, those with PIPELINE_IDS after the others of a size (the
    targets that take the last of a size take them); only those with `ids` when given."""
    runs = [(path, _read(path)) for path in results_dir.glob("bench-*.json")]
    if ids is not None:
        runs = [run for run in runs if pipeline_ids(run[1]) == ids]
    return sorted(runs, key=lambda run: (run[1]["size"], pipeline_ids(run[1]) == PIPELINE_IDS))


def _run_at(
    results_dir: Path, size: int, label: str, ids: str | None = None
) -> tuple[Path, dict, list[str]] | None:
    """The bench run at `size` events, else the largest one with the difference named."""
    runs = _bench_runs(results_dir, ids)
    if not runs:
        return None
    exact = [run for run in runs if run[1]["size"] == size]
    path, report = (exact or runs)[-1]
    differs = [] if exact else [f"{report['label']} events (target {label})"]
    return path, report, differs + _cores(report["machine"].get("cpus"))


def _full_build(results_dir: Path) -> Measured:
    run = _run_at(results_dir, FULL_BUILD_SIZE, "100M")
    if run is None:
        return Measured((None, None), note="no bench-*.json: make bench SIZE=100M")
    path, report, differs = run
    full, floor = report["variants"]["pipeline_full"], report["variants"]["floor"]
    cpu = report.get("ratios_cpu", {}).get("pipeline_over_floor")
    return Measured(
        (report["ratios"]["pipeline_over_floor"], full["peak_rss_bytes"] / GIB),
        path.name,
        differs,
        f"{full['wall_s']:.1f} s vs floor {floor['wall_s']:.1f} s"
        + (f"; CPU {cpu:.2f}x" if cpu else ""),
    )


def _landing(results_dir: Path) -> Measured:
    runs = _bench_runs(results_dir)
    with_read = [run for run in runs if LANDING_READ_VARIANT in run[1]["variants"]]
    if not with_read:
        note = "no bench times DuckDB's read_json/read_csv of the landing files alone"
        if runs:
            path, report = runs[-1]
            landing = report["variants"]["pipeline_full"]["detail"]["phases"]["landing"]
            note += f" (landing: {landing:.1f} s at {report['label']}, {path.name})"
        return Measured((None,), note=note)
    path, report = with_read[-1]
    variants = report["variants"]
    landing = variants["pipeline_full"]["detail"]["phases"]["landing"]
    read = variants[LANDING_READ_VARIANT]["wall_s"]
    top, top_note = _classified_over_next(variants["pipeline_full"])
    return Measured(
        (round(landing / read, 2), top),
        path.name,
        _cores(report["machine"].get("cpus")),
        f"landing {landing:.1f} s vs read {read:.1f} s at {report['label']}; {top_note}",
    )


def _classified_over_next(full: dict) -> tuple[float | None, str]:
    """int_usage_events_classified's time in a full build over the slowest other dbt node's
    (0 when it is not among the slowest nodes the run kept), and a note naming both."""
    nodes = full["detail"].get("dbt", {}).get("nodes", [])
    times = {node["node"]: node["execution_s"] for node in nodes}
    classified = times.pop(CLASSIFIED_NODE, None)
    if not times:
        return None, "no dbt node times"
    if classified is None:
        return 0.0, f"int_usage_events_classified not among the {len(nodes)} slowest nodes"
    node, slowest = max(times.items(), key=lambda item: item[1])
    name = node.split(".")[2]  # <resource type>.<package>.<name>[.<test hash>]
    return (
        round(classified / slowest, 2),
        f"int_usage_events_classified {classified:.1f} s, next {name} {slowest:.1f} s",
    )


def _batch_alone(results_dir: Path) -> Measured:
    runs = [run for run in _bench_runs(results_dir) if "batch_alone" in run[1]["variants"]]
    if not runs:
        return Measured((None,), note="no bench-*.json: make bench SIZE=10M (its batch is 100K)")

    def distance(run: tuple[Path, dict]) -> tuple[float, int]:
        events = run[1]["variants"]["batch_alone"]["events"]
        return abs(math.log(events / BATCH_ALONE_EVENTS)), -run[1]["size"]

    path, report = min(runs, key=distance)
    alone = report["variants"]["batch_alone"]
    differs = (
        []
        if alone["events"] == BATCH_ALONE_EVENTS
        else [f"a batch of {alone['events']:,} events (target {BATCH_ALONE_EVENTS:,})"]
    )
    return Measured(
        (alone["wall_s"],),
        path.name,
        differs + _cores(report["machine"].get("cpus")),
        f"the timed run (the process, with start-up and dbt parse: "
        f"{alone['process_wall_s']:.1f} s)"
        + (
            "; with dbt's JSON artifacts, which a deployment skips (decision 88)"
            if (alone.get("detail") or {}).get("dbt")
            else ""
        ),
    )


def _incremental(ids: str) -> Callable[[Path], Measured]:
    """Target 4 (PIPELINE_IDS) and 4r (random ids): the same reading of runs with `ids`."""

    def measure(results_dir: Path) -> Measured:
        run = _run_at(results_dir, FULL_BUILD_SIZE, "100M", ids)
        if run is None:
            flag = "" if ids == PIPELINE_IDS else f" BENCH_ARGS='--ids {ids}'"
            return Measured(
                (None,), note=f"no bench-*.json with {ids} ids: make bench SIZE=100M{flag}"
            )
        return _incremental_of(*run)

    return measure


def _incremental_of(path: Path, report: dict, differs: list[str]) -> Measured:
    incremental = report["variants"]["incremental"]
    alone = report["variants"]["batch_alone"]
    if report["targets"]["incremental_over_batch_alone"].get("meaningful") is False:
        differs.append("dbt rebuilt every model (the incremental path did not exist)")
    cpu = report.get("ratios_cpu", {}).get("incremental_over_batch_alone")
    samples = len(incremental["detail"].get("runs_wall_s") or [None])
    return Measured(
        (report["ratios"]["incremental_over_batch_alone"],),
        path.name,
        differs,
        f"{incremental['wall_s']:.1f} s vs {alone['wall_s']:.1f} s alone"
        + (f", each the fastest of {samples} runs" if samples > 1 else "")
        + (f"; CPU {cpu:.2f}x" if cpu else ""),
    )


def _flat(results_dir: Path) -> Measured:
    runs = [
        (path, report)
        for path, report in _bench_runs(results_dir)
        if report["ratios"].get("incremental_over_batch_alone")
    ]
    # Of a size, the run with PIPELINE_IDS when there is one (_bench_runs puts it last).
    by_size = {report["size"]: (path, report) for path, report in runs}
    small, big = FLAT_SIZES
    if small in by_size and big in by_size:
        pair, differs = (by_size[small], by_size[big]), []
    elif len(runs) >= 2:
        pair = (runs[-2], runs[-1])
        differs = [f"{pair[0][1]['label']} vs {pair[1][1]['label']} (target 50M vs 100M)"]
    else:
        return Measured((None,), note="needs bench-50M.json and bench-100M.json")
    (small_path, small_report), (big_path, big_report) = pair
    before = small_report["ratios"]["incremental_over_batch_alone"]
    after = big_report["ratios"]["incremental_over_batch_alone"]
    growth = round(after / before, 2)
    for report in (small_report, big_report):
        differs += _cores(report["machine"].get("cpus")) + _ids_differ(report)
    return Measured(
        (growth,),
        f"{small_path.name}, {big_path.name}",
        differs,
        figure=f"{before:.2f}x -> {after:.2f}x ({growth:.2f}x)",
    )


def _ids_differ(report: dict) -> list[str]:
    ids = pipeline_ids(report)
    return (
        []
        if ids == PIPELINE_IDS
        else [f"{report['label']}: {ids} uniqueIds (target {PIPELINE_IDS})"]
    )


def _latency_differs(report: dict, probes: int) -> list[str]:
    differs = []
    load = report.get("load_events_per_s", 0)
    if load < LATENCY_LOAD_EVENTS_PER_S:
        spacing = report.get("spacing", "idle")  # files from before --spacing were idle
        under = f"{load:,} events/s of load" if load else "no steady load"
        differs.append(f"{spacing} spacing, {under} (target 1K events/s)")
    if probes < LATENCY_PROBES:
        differs.append(f"{probes} probes (target {LATENCY_PROBES})")
    return differs + _cores(report.get("cpu_count"))


def _nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _latency(runner: str) -> Callable[[Path], Measured]:
    def measure(results_dir: Path) -> Measured:
        found = []
        for path in sorted(results_dir.glob("ingest_latency*.json")):
            report = _read(path)
            if report["runner"] != runner:
                continue
            rated = [p["rated"] for p in report.get("detail", []) if p.get("rated") is not None]
            found.append((path, report, rated, _latency_differs(report, len(rated))))
        if not found:
            return Measured(
                (None, None),
                note=f"no ingest_latency*.json with runner {runner} (bench/ingest_latency.py)",
            )
        # The file closest to the target's conditions, then the one with most probes.
        path, report, rated, differs = min(found, key=lambda f: (len(f[3]), -len(f[2]), f[0].name))
        if not rated:
            return Measured((None, None), path.name, note="no probe reached fct_rated_usage")
        notes = [f"{len(rated)} probes"] if len(rated) >= LATENCY_PROBES else []
        if len(rated) < report["probes"]:
            notes.append(f"{report['probes'] - len(rated)} of {report['probes']} never rated")
        note = "; ".join(notes)
        return Measured(
            (report["in_fct_rated_usage_s"]["median"], _nearest_rank(rated, 0.99)),
            path.name,
            differs,
            note,
        )

    return measure


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


def _ingest_differs(report: dict, case: dict) -> list[str]:
    differs = []
    if case["workers"] != INGEST_WORKERS:
        differs.append(f"{_workers(case['workers'])} (target {INGEST_WORKERS})")
    low, high = INGEST_BATCH
    if not low <= case["batch"] <= high:
        differs.append(f"batches of {case['batch']} (target {low}-{high:,})")
    ids = ingest_ids(case)
    if ids != INGEST_IDS:
        differs.append(f"{ids} uniqueIds (target: {INGEST_IDS}, as the SDK makes them)")
    return differs + _cores(report["machine"].get("cpus"))


def _ingest(results_dir: Path) -> Measured:
    cases = []
    for path in sorted(results_dir.glob("ingest_load*.json")):
        report = _read(path)
        cases += [(path, case, _ingest_differs(report, case)) for case in report["results"]]
    if not cases:
        return Measured((None, None, None), note="no ingest_load*.json: make bench-ingest")
    pool = [case for case in cases if not case[2]] or cases

    def within_latency(case: dict) -> bool:
        return case["latency_ms"]["p99"] <= INGEST_P99_MS and case["lost"] == 0

    def speed(item: tuple[Path, dict, list[str]]) -> int:
        return item[1]["events_per_s"]

    # The fastest case that keeps p99 and loses nothing: the target is one operating point.
    path, case, differs = max([item for item in pool if within_latency(item[1])] or pool, key=speed)
    _, fastest, _ = max(pool, key=speed)
    note = f"{_workers(case['workers'])}, {case['concurrency']} connections"
    if fastest is not case:
        note += (
            f"; fastest {fastest['events_per_s']:,}/s at p99 {fastest['latency_ms']['p99']} ms"
            f" ({fastest['concurrency']} connections)"
        )
    return Measured(
        (case["events_per_s"], case["latency_ms"]["p99"], case["lost"]), path.name, differs, note
    )


def _identical(results_dir: Path) -> Measured:
    runs = _bench_runs(results_dir)
    comparisons = [
        (report["label"], comparison)
        for _path, report in runs
        for comparison in report["checks"]["comparisons"]
    ]
    if not comparisons:
        return Measured((None,), note="no bench-*.json: make bench")
    different = [
        f"{c['candidate']} vs {c['reference']} at {label}"
        for label, c in comparisons
        if not c["identical"]
    ]
    labels = ", ".join(path.stem.removeprefix("bench-") for path, _report in runs)
    return Measured(
        (len(different),),
        f"bench-*.json ({labels})",
        note=("DIFFERENT: " + "; ".join(different))
        if different
        else "every variant vs its floor, peers vs the pipeline",
        figure=f"{len(comparisons) - len(different)} of {len(comparisons)} identical",
    )


def _latency_target(key: str, runner: str, conditions: str) -> Target:
    """Target 5 (the daemon) and 5w (`billing watch`): the same checks, on the runner's files."""
    title = {"daemon": "daemon", "watch": "billing watch"}[runner]
    return Target(
        key=key,
        title=f"event -> rated, {title}",
        files="ingest_latency*.json",
        fields=("runner", "in_fct_rated_usage_s.median", "detail[].rated", "load_events_per_s"),
        conditions=conditions,
        checks=(
            Check("median", "<=", LATENCY_MEDIAN_S, " s", 1),
            Check("p99", "<=", LATENCY_P99_S, " s", 1),
        ),
        measure=_latency(runner),
    )


TARGETS: tuple[Target, ...] = (
    Target(
        key="1",
        title="100M full build / floor; RSS",
        files="bench-100M.json",
        fields=("ratios.pipeline_over_floor", "variants.pipeline_full.peak_rss_bytes"),
        conditions="100M events; the wall-time ratio of one run; 2 cores",
        checks=(
            Check("", "<=", FULL_BUILD_OVER_FLOOR, "x"),
            Check("RSS", "<=", FULL_BUILD_PEAK_RSS_GIB, " GiB"),
        ),
        measure=_full_build,
    ),
    Target(
        key="2",
        title="landing / read; classified not top",
        files="bench-*.json",
        fields=(
            "variants.pipeline_full.detail.phases.landing",
            f"variants.{LANDING_READ_VARIANT}.wall_s",
            "variants.pipeline_full.detail.dbt.nodes[].execution_s",
        ),
        conditions="the same files, one run (the largest with the read timed); "
        "int_usage_events_classified's time in its full build over the slowest other dbt "
        "node's; 2 cores",
        checks=(
            Check("", "<=", LANDING_OVER_READ, "x"),
            Check("classified/next", "<=", CLASSIFIED_OVER_NEXT, "x"),
        ),
        measure=_landing,
    ),
    Target(
        key="3",
        title="100K batch alone, end to end",
        files="bench-*.json",
        fields=("variants.batch_alone.wall_s",),
        conditions="a batch of 100,000 events (the 10M run's 1 % batch) through the pipeline "
        "into an empty warehouse; 2 cores",
        checks=(Check("", "<=", BATCH_ALONE_S, " s", 1),),
        measure=_batch_alone,
    ),
    Target(
        key="4",
        title="incremental 1% at 100M / alone",
        files="bench-100M.json",
        fields=("ratios.incremental_over_batch_alone",),
        conditions="100M events of history; uniqueIds time-ordered as the SDK makes them "
        "(generation.ids); the wall-time ratio of one run; 2 cores",
        checks=(Check("", "<=", INCREMENTAL_OVER_BATCH, "x"),),
        measure=_incremental(PIPELINE_IDS),
    ),
    Target(
        key="4r",
        title="4 with random uniqueIds",
        files="bench-100M-random-ids.json",
        fields=("ratios.incremental_over_batch_alone", "generation.ids"),
        conditions="reported alongside 4 and judged under its other conditions: random "
        "uniqueIds, which no file's id range excludes, so the lookup reads all of history",
        checks=(Check("", "<=", INCREMENTAL_OVER_BATCH, "x"),),
        measure=_incremental("random"),
    ),
    Target(
        key="4b",
        title="4 flat, 50M -> 100M history",
        files="bench-50M.json, bench-100M.json",
        fields=("ratios.incremental_over_batch_alone",),
        conditions=f"history doubling from 50M to 100M, uniqueIds as for 4; flat read as the "
        f"100M ratio at most {FLAT_TOLERANCE:g}x the 50M one",
        checks=(Check("", "<=", FLAT_TOLERANCE, "x"),),
        measure=_flat,
        goal=f"<= {FLAT_TOLERANCE:g}x the 50M ratio",
    ),
    _latency_target(
        "5",
        "daemon",
        "runner daemon (`make dev`); 50 probes under a steady 1K events/s (`load_events_per_s`: "
        "bench/ingest_latency.py --load 1000 --spacing random --probes 50); p99 of the probes "
        "by nearest rank; 2 cores; of several files, the closest to these conditions",
    ),
    _latency_target(
        "5w",
        "watch",
        "runner watch (`billing watch`), reported alongside 5 and judged under its "
        "other conditions",
    ),
    Target(
        key="6",
        title="ingest, loopback",
        files="ingest_load*.json",
        fields=("results[].events_per_s", "results[].latency_ms.p99", "results[].lost"),
        conditions="batches of 500-1,000, 2 workers, loopback, time-ordered uniqueIds as the "
        "SDK makes them; 2 cores; the fastest case that keeps p99 and loses nothing counts",
        checks=(
            Check("", ">=", INGEST_EVENTS_PER_S, "/s", 0),
            Check("p99", "<=", INGEST_P99_MS, " ms", 1),
            Check("", "==", 0, " lost", 0),
        ),
        measure=_ingest,
    ),
    Target(
        key="7",
        title="invoices identical to floor",
        files="bench-*.json",
        fields=("checks.comparisons[].identical",),
        conditions="every comparison of every run",
        checks=(Check("", "==", 0, " different", 0),),
        measure=_identical,
        goal="all identical",
    ),
)


def judge(target: Target, measured: Measured) -> Outcome:
    values = measured.values
    if any(value is None for value in values):
        status, figure = NOT_MEASURED, measured.figure or "-"
    else:
        figure = measured.figure or ", ".join(
            check.show(value) for check, value in zip(target.checks, values, strict=True)
        )
        if measured.differs:
            status = DIFFERENT
        elif all(check.passes(value) for check, value in zip(target.checks, values, strict=True)):
            status = MET
        else:
            status = MISSED
    note = measured.note
    if status == DIFFERENT:
        note = "; ".join([*measured.differs, note] if note else measured.differs)
    return Outcome(
        target.key,
        target.title,
        target.goal_text(),
        status,
        figure,
        measured.source,
        note,
        values,
    )


def evaluate(results_dir: Path = RESULTS_DIR) -> list[Outcome]:
    return [judge(target, target.measure(results_dir)) for target in TARGETS]


COLUMNS = ("#", "target", "goal", "figure", "status")


def _row(outcome: Outcome) -> tuple[str, ...]:
    return outcome.key, outcome.title, outcome.goal, outcome.figure, outcome.status


def _where(outcome: Outcome) -> str:
    """The file a figure came from and the note, as one line."""
    if outcome.source == "-":
        return outcome.note
    return f"{outcome.source}: {outcome.note}" if outcome.note else outcome.source


def table_lines(outcomes: list[Outcome], results_dir: Path) -> list[str]:
    """One line per target (the verdicts), then one per target saying where from and why."""
    rows = [COLUMNS, *(_row(outcome) for outcome in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    counts = dict.fromkeys((MET, MISSED, DIFFERENT, NOT_MEASURED), 0)
    for outcome in outcomes:
        counts[outcome.status] += 1
    key_width = widths[0]
    return [
        f"issue 23 targets from {results_dir} ({CORES} cores): "
        + ", ".join(f"{count} {status}" for status, count in counts.items()),
        *(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ),
        "",
        *(f"{outcome.key.ljust(key_width)}  {_where(outcome)}" for outcome in outcomes),
    ]


def markdown_lines(outcomes: list[Outcome]) -> list[str]:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("*", "\\*")

    header = [*COLUMNS, "from", "note"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for outcome in outcomes:
        cells = [*_row(outcome), outcome.source, outcome.note]
        lines.append("| " + " | ".join(escape(cell) for cell in cells) + " |")
    lines += ["", "What each target reads, and the conditions it is judged under:", ""]
    lines += [
        f"- **{target.key}** `{target.files}`: "
        + ", ".join(f"`{name}`" for name in target.fields)
        + f". Conditions: {target.conditions}."
        for target in TARGETS
    ]
    return lines


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def print_summary(results_dir: Path = RESULTS_DIR) -> None:
    print()
    for line in table_lines(evaluate(results_dir), _shown(results_dir)):
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.targets",
        description="Issue 23's performance targets: figure, met / missed / not measured.",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    for line in table_lines(evaluate(args.results_dir), _shown(args.results_dir)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
