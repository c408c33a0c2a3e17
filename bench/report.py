"""The bench's table on the terminal and its chart (PNG)."""

from __future__ import annotations

from pathlib import Path

ORDER = (
    "floor",
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
    if "rows" in detail:
        parts.append(f"{sum(detail['rows'].values()):,} rows")
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
        f"{targets['pipeline_over_floor']['target']:.0f}x at 100M; "
        f"{_verdict(targets['pipeline_over_floor'])})"
    )
    incremental = targets["incremental_over_batch_alone"]
    lines.append(
        f"incremental / batch alone     {_fmt_ratio(ratios['incremental_over_batch_alone'])}"
        f"   (cpu {_fmt_ratio(cpu.get('incremental_over_batch_alone'))}; target <= "
        f"{incremental['target']:.0f}x; {_verdict(incremental)})"
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
