"""The bench's table on the terminal and its chart (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import targets as issue_23

ORDER = (
    "floor",
    "read_landing_files",
    "pipeline_full",
    "floor_history_batch",
    "incremental",
    "floor_batch",
    "batch_alone",
    "peer_duckdb",
    "postgres_copy",
    "postgres_dbt",
    "spark_full",
)
GIB = 1024**3


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _detail(variant: dict) -> str:
    detail = variant["detail"]
    parts = []
    phases = detail.get("phases") or {}
    for name in ("landing", "dbt", "exports"):
        if name in phases:
            parts.append(f"{name} {phases[name]:.1f}")
    dbt = detail.get("dbt") or {}
    if dbt.get("elapsed_s") is not None:
        parts.append(f"dbt elapsed {dbt['elapsed_s']:.1f}")
        slowest = [n for n in dbt.get("nodes", []) if n["node"].startswith("model.")][:1]
        if slowest:
            parts.append(
                f"slowest {slowest[0]['node'].split('.')[-1]} {slowest[0]['execution_s']:.1f}"
            )
    if detail.get("runs_wall_s"):
        parts.append("fastest of " + " / ".join(f"{w:.1f}" for w in detail["runs_wall_s"]))
    if "rows" in detail:  # per table (the Postgres copy) or one count (the landing read)
        rows = detail["rows"]
        parts.append(f"{sum(rows.values()) if isinstance(rows, dict) else rows:,} rows")
    return ", ".join(parts)


def table_lines(report: dict) -> list[str]:
    variants = report["variants"]
    header = f"{'variant':<30} {'events':>12} {'wall s':>9} {'events/s':>12} {'cpu s':>9} {'peak RSS':>10}  where the time went (s)"
    lines = [header, "-" * len(header)]
    for name in ORDER:
        if name not in variants:
            continue
        variant = variants[name]
        lines.append(
            f"{variant['title']:<30} {variant['events']:>12,} {variant['wall_s']:>9.1f} "
            f"{variant['events_per_s'] or 0:>12,} {variant['cpu_s']:>9.1f} "
            f"{variant['peak_rss_bytes'] / GIB:>7.2f} GiB  {_detail(variant)}"
        )
    ratios = report["ratios"]
    targets = report["targets"]
    lines.append("")
    cpu = report.get("ratios_cpu", {})
    lines.append(
        f"pipeline / floor              {_fmt_ratio(ratios['pipeline_over_floor'])}"
        f"   (cpu {_fmt_ratio(cpu.get('pipeline_over_floor'))}; target <= "
        f"{targets['pipeline_over_floor']['target']:g}x at 100M; "
        f"{_verdict(targets['pipeline_over_floor'])})"
    )
    if ratios.get("landing_over_read"):
        lines.append(
            f"landing / DuckDB read         {_fmt_ratio(ratios['landing_over_read'])}"
            f"   (target <= {issue_23.LANDING_OVER_READ:g}x; "
            f"{_verdict(targets['landing_over_read'])})"
        )
    incremental = targets["incremental_over_batch_alone"]
    lines.append(
        f"incremental / batch alone     {_fmt_ratio(ratios['incremental_over_batch_alone'])}"
        f"   (cpu {_fmt_ratio(cpu.get('incremental_over_batch_alone'))}; target <= "
        f"{incremental['target']:g}x; {_verdict(incremental)})"
    )
    if not incremental.get("meaningful", True):
        lines.append(f"    {incremental['note']}")
    peer = ""
    if "postgres_dbt" in variants:
        pg_dbt = variants["postgres_dbt"]["detail"]["dbt"]["elapsed_s"]
        duck_name = variants["postgres_dbt"]["detail"].get("duckdb_variant", "")
        duck_dbt = ((variants.get(duck_name) or {}).get("detail", {}).get("dbt") or {}).get(
            "elapsed_s"
        )
        peer = f"   (dbt elapsed at {report['peer_size']:,} events: postgres {pg_dbt:.1f} s"
        peer += f", duckdb {duck_dbt:.1f} s)" if duck_dbt else ")"
    lines.append(
        f"postgres / duckdb (dbt build) {_fmt_ratio(ratios['postgres_over_duckdb'])}"
        + (peer or "   (skipped)")
    )
    if "spark_full" in variants:
        spark_dbt = (variants["spark_full"]["detail"].get("dbt") or {}).get("elapsed_s")
        duck_dbt = (variants["pipeline_full"]["detail"].get("dbt") or {}).get("elapsed_s")
        lines.append(
            f"spark / duckdb (pipeline)     {_fmt_ratio(ratios.get('spark_over_duckdb'))}"
            f"   (cpu {_fmt_ratio(cpu.get('spark_over_duckdb'))}"
            + (
                f"; dbt elapsed spark {spark_dbt:.1f} s, duckdb {duck_dbt:.1f} s)"
                if spark_dbt and duck_dbt
                else ")"
            )
        )
    checks = report["checks"]
    lines.append("")
    for comparison in checks["comparisons"]:
        verdict = "identical" if comparison["identical"] else "DIFFERENT"
        lines.append(
            f"{comparison['candidate']:<22} vs {comparison['reference']:<20} "
            f"{comparison['invoices']:>4} invoices  {verdict}"
        )
    load = report["machine"].get("load_average_at_end")
    if load:
        lines.append("")
        lines.append(
            f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"on {report['machine']['cpus']} cores (shared machine: see load_before/after per variant)"
        )
    return lines


def _verdict(target: dict) -> str:
    if target["met"] is None:
        return "not measured"
    if target.get("meaningful") is False:
        return "met, not meaningful" if target["met"] else "missed, not meaningful"
    return "met" if target["met"] else "MISSED"


def print_table(report: dict) -> None:
    print()
    print(f"bench {report['label']} ({report['size']:,} events)")
    for line in table_lines(report):
        print(line)
    print()


def write_chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = report["variants"]
    names = [name for name in ORDER if name in variants][::-1]
    titles = [variants[name]["title"] for name in names]
    walls = [variants[name]["wall_s"] for name in names]
    peaks = [variants[name]["peak_rss_bytes"] / GIB for name in names]
    colors = [
        "#6b7280"
        if name.startswith("floor")
        else "#16a34a"
        if "postgres" in name
        else "#ea580c"
        if name.startswith("spark")
        else "#2563eb"
        for name in names
    ]

    figure, (left, right) = plt.subplots(
        1,
        2,
        figsize=(10, 0.45 * len(names) + 1.6),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 2]},
    )
    left.barh(titles, walls, color=colors)
    left.set_xscale("log")
    left.set_xlabel("wall time, s (log)")
    for y, value in enumerate(walls):
        left.text(value, y, f" {value:,.1f}", va="center", fontsize=8)
    right.barh(titles, peaks, color=colors)
    right.set_xlabel("peak RSS, GiB")
    for y, value in enumerate(peaks):
        right.text(value, y, f" {value:.2f}", va="center", fontsize=8)
    ratios = report["ratios"]
    figure.suptitle(
        f"bench {report['label']}: pipeline/floor {_fmt_ratio(ratios['pipeline_over_floor'])}, "
        f"incremental/batch {_fmt_ratio(ratios['incremental_over_batch_alone'])}, "
        f"postgres/duckdb {_fmt_ratio(ratios['postgres_over_duckdb'])}"
        + (
            f", spark/duckdb {_fmt_ratio(ratios['spark_over_duckdb'])}"
            if ratios.get("spark_over_duckdb")
            else ""
        ),
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)


# The docs site's benchmark page (docs/benchmarks.md), generated from bench/results/*.json by
# scripts/generate_docs.py: `make bench*` rewrite it, `mkdocs build --strict` fails when it is stale.
# The per-run and per-case tables judge each figure by issue 23's thresholds (bench/targets.py);
# the summary at the top of the page also checks the conditions each target is stated under.
INGEST_TARGET_EVENTS_PER_S = issue_23.INGEST_EVENTS_PER_S
INGEST_TARGET_P99_MS = issue_23.INGEST_P99_MS
LATENCY_TARGET_S = issue_23.LATENCY_MEDIAN_S
# What each run recorded was judged by the thresholds of its day (3x and 2x before issue 23).
CURRENT_RATIO_TARGETS = {
    "pipeline_over_floor": issue_23.FULL_BUILD_OVER_FLOOR,
    "incremental_over_batch_alone": issue_23.INCREMENTAL_OVER_BATCH,
}


def _size_of(path: Path) -> int:
    return json.loads(path.read_text())["size"]


def _md_table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{value:.1f}" for value in values) if values else "n/a"


def _pipeline_section(path: Path) -> list[str]:
    report = json.loads(path.read_text())
    variants = report["variants"]
    machine = report["machine"]
    ids = issue_23.pipeline_ids(report)
    lines = [
        f"### {report['label'].removesuffix(f'-{ids}-ids')} events, {ids} uniqueIds",
        "",
        f"`{path.as_posix()}`: finished {report['finished_at'][:16].replace('T', ' ')} UTC, "
        f"{machine['cpus']} cores, load average at the end "
        f"{_load(machine.get('load_average_at_end'))}; DuckDB {machine.get('duckdb', '?')}, "
        f"Dagster {machine.get('dagster', '?')}, dbt-core {machine.get('dbt_core', '?')}.",
        "",
    ]
    rows = [
        [
            variants[name]["title"],
            f"{variants[name]['events']:,}",
            f"{variants[name]['wall_s']:.1f}",
            f"{variants[name]['cpu_s']:.1f}",
            f"{variants[name]['peak_rss_bytes'] / GIB:.2f} GiB",
            _detail(variants[name]),
        ]
        for name in ORDER
        if name in variants
    ]
    lines += _md_table(
        ["variant", "events", "wall s", "CPU s", "peak RSS", "where the time went (s)"],
        rows,
        "lrrrrl",
    )
    ratios, cpu, targets = report["ratios"], report.get("ratios_cpu", {}), report["targets"]
    ratio_rows = []
    for name, title in (
        ("pipeline_over_floor", "pipeline / floor"),
        ("landing_over_read", "landing / DuckDB read of the files"),
        ("incremental_over_batch_alone", "incremental / batch alone"),
        ("postgres_over_duckdb", "PostgreSQL / DuckDB (dbt elapsed)"),
        ("spark_over_duckdb", "Spark / DuckDB (pipeline, local mode)"),
    ):
        if name in ("spark_over_duckdb", "landing_over_read") and not ratios.get(name):
            continue  # no such variant in this run
        target = targets.get(name)
        if target and name in CURRENT_RATIO_TARGETS:
            threshold = CURRENT_RATIO_TARGETS[name]
            target = {
                **target,
                "target": threshold,
                "met": issue_23.ratio_met(ratios.get(name), threshold),
            }
        ratio_rows.append(
            [
                title,
                _fmt_ratio(ratios.get(name)),
                _fmt_ratio(cpu.get(name)) if name in cpu else "",
                f"<= {target['target']:g}x" if target else "",
                (_verdict(target) + (f" ({target['note']})" if target.get("note") else ""))
                if target
                else "",
            ]
        )
    lines += ["", *_md_table(["ratio", "wall", "CPU", "target", "verdict"], ratio_rows, "lrrrl")]
    comparisons = report["checks"]["comparisons"]
    same = all(c["identical"] for c in comparisons)
    lines += [
        "",
        ("Invoices identical" if same else "**Invoices DIFFERENT**")
        + " in every comparison: "
        + "; ".join(
            f"{c['candidate']} vs {c['reference']} ({c['invoices']} invoices"
            f"{'' if c['identical'] else ', DIFFERENT'})"
            for c in comparisons
        )
        + ".",
        "",
    ]
    return lines


def _ingest_load_section(paths: list[Path]) -> list[str]:
    rows = []
    for path in paths:
        report = json.loads(path.read_text())
        for result in report["results"]:
            latency = result["latency_ms"]
            met = (
                result["events_per_s"] >= INGEST_TARGET_EVENTS_PER_S
                and latency["p99"] <= INGEST_TARGET_P99_MS
                and result["lost"] == 0
            )
            rows.append(
                [
                    f"`{path.name}`",
                    f"{report['seconds']:.0f} s",
                    issue_23.ingest_ids(result),
                    str(result["batch"]),
                    str(result["workers"]),
                    str(result["concurrency"]),
                    f"{result['events_per_s']:,}",
                    f"{latency['p50']:.1f} / {latency['p99']:.1f} ms",
                    f"{result.get('server_cpu_us_per_event', 0):.0f} µs",
                    str(result["lost"]),
                    "met" if met else "missed",
                ]
            )
    return _md_table(
        [
            "results",
            "measured",
            "uniqueIds",
            "batch",
            "workers",
            "connections",
            "events/s",
            "p50 / p99",
            "server CPU per event",
            "lost",
            f">= {INGEST_TARGET_EVENTS_PER_S:,}/s and p99 <= {INGEST_TARGET_P99_MS:.0f} ms",
        ],
        rows,
        "lllrrrrrrrl",
    )


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _latency_section(paths: list[Path]) -> list[str]:
    rows = []
    for path in paths:
        report = json.loads(path.read_text())
        rated, visible = report["in_fct_rated_usage_s"], report["visible_s"]
        rows.append(
            [
                f"`{path.name}`",
                report["runner"],
                report.get("spacing", "idle"),
                f"{report['load_events_per_s']:,}/s" if report.get("load_events_per_s") else "-",
                str(report["probes"]),
                f"{report['ack_ms_median']:.0f} ms",
                f"{rated['median']:.1f} / {rated['max']:.1f} s",
                f"{visible['median']:.1f} / {visible['max']:.1f} s",
                _seconds(report.get("runner_cpu_s_median")),
                "met" if rated["median"] <= LATENCY_TARGET_S else "missed",
                _load(report.get("load_avg_at_end")),
            ]
        )
    return _md_table(
        [
            "results",
            "runner",
            "spacing",
            "steady load",
            "probes",
            "202 (median)",
            "POST -> fct_rated_usage (median / max)",
            "POST -> API read (median / max)",
            "runner CPU per event",
            f"median <= {LATENCY_TARGET_S:.0f} s",
            "load at the end",
        ],
        rows,
        "lllrrrrrrll",
    )


def benchmarks_page(results_dir: Path) -> str:
    """docs/benchmarks.md: every result file of bench/results/, as tables."""
    root = results_dir.parent.parent
    pipeline = sorted(
        results_dir.glob("bench-*.json"), key=lambda path: (_size_of(path), path.name)
    )
    load = sorted(results_dir.glob("ingest_load*.json"))
    latency = sorted(results_dir.glob("ingest_latency*.json"))
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated from bench/results/*.json by scripts/generate_docs.py: do not edit. -->",
        "",
        "Every number on this page is read from the result files in `bench/results/`, which the",
        "benchmark commands below write (and rewrite this page from). The method, what each",
        "variant runs and how time, CPU and memory are measured are in `bench/README.md`. The",
        "machine is a shared 2-core VM: compare ratios and CPU seconds from one run rather than",
        "wall times across runs.",
        "",
        "## Issue 23's targets",
        "",
        "```bash",
        "make bench-summary                      # this table on the terminal",
        "```",
        "",
        "Each target judged against the result files below (`bench/targets.py` declares them).",
        "A target is *met* or *missed* only when it was measured under the conditions it is",
        "stated for; *measured differently* gives the figure and what differed; *not measured*:",
        "no result file has it.",
        "",
        *issue_23.markdown_lines(issue_23.evaluate(results_dir)),
        "",
        "## Pipeline: hand-written SQL floor, full build, incremental, PostgreSQL",
        "",
        "```bash",
        "make bench SIZE=1M                      # about 7 minutes on a busy 2-core machine",
        "make bench SIZE=10M                     # the default: about 6 minutes idle, 25 under load",
        "make bench SIZE=100M PEER_SIZE=10M      # about 13 GB of landing files: check `df -h` first",
        ".venv/bin/python -m bench --size 1M --no-postgres",
        "make bench SIZE=100M BENCH_ARGS='--ids random'   # random uniqueIds: bench-100M-random-ids.json",
        "```",
        "",
        "The floor is `bench/floor.sql` (dedupe, quarantine, aggregate and rate straight from the",
        "landing files); the pipeline is what `billing_pipeline` runs; the incremental variant",
        "lands a 1 % batch on the built history the way the landing sensor does; the batch alone",
        "is the same batch into an empty warehouse; PostgreSQL runs the same dbt project. Every",
        "variant must produce identical invoices (exact decimals), or the run fails.",
        "",
    ]
    for path in pipeline:
        lines += _pipeline_section(path.relative_to(root))
    lines += [
        "## Ingestion API throughput",
        "",
        "```bash",
        "make bench-ingest",
        "```",
        "",
        "Loopback, batches of 500 (`--batch` for others), the given connections sending back to",
        "back; afterwards every landing file is read back and landed: accepted = lines in landing",
        "files = ids in the ledger = rows in `raw.usage_events` (*lost* counts the difference).",
        "Newer results record `cpu_stolen_pct`, the machine's CPU time given to other guests",
        "during the case. *uniqueIds*: `time-ordered` as the SDK makes them (UUIDv7s, the",
        "default since decision 118), `random` as `uuid4().hex` (`--ids random`), `sequential`",
        "(`c<connection>-b<batch>-<n>`) as every result before decision 118 (the files named",
        "`*_sequential_ids.json`, measured in faster hours of the machine). The API's claim table",
        "is a B-tree keyed by uniqueId: it writes time-ordered and sequential ids side by side,",
        "random ones each on a page of its own. Compare kinds within one hour (decision 118).",
        "",
        *_ingest_load_section(load),
        "",
        "## From POST to the rated table",
        "",
        "```bash",
        "make bench-ingest-latency",
        "```",
        "",
        "One event posted at a time on top of 20,000 events of history, polled through",
        "`GET /v1/accounts/{account}/usage` until its quantity counts. *runner* is `billing watch`",
        "(`watch`) or the Dagster daemon's `landing_sensor` (`daemon`); *spacing* `idle` waits",
        "until no run has been active for 5 s, `random` sends 0.5-3 s after the previous probe",
        "became visible.",
        "",
        *_latency_section(latency),
        "",
    ]
    return "\n".join(lines)
