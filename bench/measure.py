"""Run one variant in its own process and measure it: wall time, CPU time, peak memory.

Every variant is a child process so its memory is its own (the harness's imports and caches are
not counted) and so DuckDB/Python allocator state does not leak from one variant to the next.
Peak memory is sampled with psutil: the resident set of the child and all its descendants (dbt
runs as a subprocess of Dagster), plus, for the Postgres variant, the proportional set size of
the server's processes (PSS, so the shared buffers are counted once, not once per backend).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.2
HEARTBEAT_SECONDS = 15.0
GIB = 1024**3


@dataclass(frozen=True)
class Measurement:
    label: str
    process_wall_s: float
    process_cpu_s: float  # the child and its descendants, start-up included
    # CPU of the processes seen in the child's tree (sampled): more than process_cpu_s when a
    # descendant is never waited for, e.g. Spark's JVM, which pyspark starts inside dbt
    tree_cpu_s: float
    cpu_s: float  # process_cpu_s plus the extra processes' CPU (the Postgres server)
    peak_rss_bytes: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    returncode: int
    log: str
    cpu_stolen_pct: float | None = None  # of the whole machine's CPU time, while it ran

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_ticks() -> tuple[int, int]:
    """(all, stolen) CPU ticks of the machine so far (/proc/stat; (0, 0) elsewhere). Stolen time
    is the hypervisor running someone else on our cores: a case measured while a lot is stolen
    says more about the neighbours than about the code."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    ticks = [int(field) for field in fields[:8]]  # guest time is counted in user time already
    return sum(ticks), ticks[7]


def stolen_pct(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time stolen between two `cpu_ticks()`, in percent."""
    ticks = after[0] - before[0]
    return round(100 * (after[1] - before[1]) / ticks, 1) if ticks > 0 else None


class VariantFailed(RuntimeError):
    pass


def _sample_tree(root: psutil.Process, cpu_seen: dict[tuple[int, float], float]) -> int:
    """The resident memory of every process in the tree now; records each one's CPU time
    (user + system) in `cpu_seen`, by pid and start time."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    rss = 0
    for process in processes:
        try:
            with process.oneshot():
                rss += process.memory_info().rss
                times = process.cpu_times()
                cpu_seen[(process.pid, process.create_time())] = times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss


def _pss(processes: Sequence[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    # Dagster's console lines carry a long prefix (time - dagster - LEVEL - job - run id - step).
    return last.rsplit(" - ", 1)[-1][:110]


def gib(value: int) -> str:
    return f"{value / GIB:.2f} GiB"


def run_measured(
    label: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    extra_processes: Callable[[], Sequence[psutil.Process]] | None = None,
    extra_cpu_s: Callable[[], float] | None = None,
    heartbeat: Callable[[str], None] = print,
) -> Measurement:
    """Run argv to completion, sampling memory; raise VariantFailed (with the log tail) on error."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    ticks_before = cpu_ticks()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra_cpu_before = extra_cpu_s() if extra_cpu_s else 0.0
    started = time.perf_counter()
    with log.open("wb") as handle:
        child = subprocess.Popen(
            list(argv),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        root = psutil.Process(child.pid)
        peak = 0
        tree_cpu: dict[tuple[int, float], float] = {}
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                current = _sample_tree(root, tree_cpu)
                if extra_processes:
                    current += _pss(extra_processes())
                peak = max(peak, current)
                stop.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        next_beat = started + HEARTBEAT_SECONDS
        while child.poll() is None:
            time.sleep(0.25)
            now = time.perf_counter()
            if now >= next_beat:
                heartbeat(
                    f"    ... {label}: {now - started:5.0f} s, peak {gib(peak)} | {_last_line(log)}"
                )
                next_beat = now + HEARTBEAT_SECONDS
        stop.set()
        sampler.join()
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    cpu = process_cpu + (extra_cpu_s() - extra_cpu_before if extra_cpu_s else 0.0)
    measurement = Measurement(
        label=label,
        process_wall_s=wall,
        process_cpu_s=process_cpu,
        tree_cpu_s=sum(tree_cpu.values()),
        cpu_s=cpu,
        peak_rss_bytes=peak,
        load_before=load_before,
        load_after=os.getloadavg(),
        returncode=child.returncode,
        log=str(log),
        cpu_stolen_pct=stolen_pct(ticks_before, cpu_ticks()),
    )
    if child.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise VariantFailed(
            f"{label} failed (exit {child.returncode}); last lines of {log}:\n" + "\n".join(tail)
        )
    return measurement


def python_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
