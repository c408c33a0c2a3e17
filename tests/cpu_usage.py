"""`--cpu-usage`: the CPU each test module costs, the processes it starts included.

`make test` is bound by CPU (docs/testing.md): what a module costs is the CPU of the pytest
process and of every process under it (dbt, Dagster's daemon and code servers, Spark's JVM,
the API's workers, the browser) while its tests run, which pytest's wall-clock durations only
hint at under three workers on two cores.

    make test PYTEST_ARGS=--cpu-usage
    .venv/bin/pytest tests/test_quarantine.py --cpu-usage

Each phase of each test (setup, call, teardown) is charged the CPU its process tree used
meanwhile: the test process and its living descendants, from /proc, each with the CPU of the
children it has reaped (utime, stime, cutime, cstime). The test process is made a child
subreaper (Linux `PR_SET_CHILD_SUBREAPER`), so that a process whose parent exits (Spark's JVM
under a dbt process, a daemonized server) stays in the tree instead of going to init; such
processes stay zombies until the test process exits (a test that waited for such a pid to
vanish would wait on its zombie; none does). Reading /proc twice per phase costs a few ms, about
1 % of a full run's CPU, and only with the option. The figures travel with pytest-xdist's
reports (`user_properties`) and the summary at the end lists modules by CPU, the heaviest
phases, and the machine's busy CPU over the session (/proc/stat) for comparison: what the
trees missed is the difference (processes started outside the session, other load).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

OPTION = "--cpu-usage"
PROPERTY = "cpu_s"
PR_SET_CHILD_SUBREAPER = 36
_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")
_STARTED = pytest.StashKey[float]()
_PHASES = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        default=False,
        help="charge each test the CPU of its process tree and list modules by CPU at the end",
    )


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = (_PROC / pid / "stat").read_text()
    except OSError:  # exited and reaped meanwhile
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rfind(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of process `root` and its descendants (living or zombie), each with the CPU
    of the children it reaped."""
    children: dict[int, list[int]] = defaultdict(list)
    cpu: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None:
            continue
        pid = int(entry.name)
        children[int(fields[1])].append(pid)  # field 4: ppid
        cpu[pid] = sum(int(value) for value in fields[11:15])  # fields 14-17
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / _TICK


def machine_busy_seconds() -> float:
    """All CPUs' non-idle time since boot (/proc/stat: everything but idle and iowait)."""
    values = [int(value) for value in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / _TICK


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption(OPTION, default=False)) and sys.platform == "linux"


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    config.stash[_STARTED] = machine_busy_seconds()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _measured(item: pytest.Item, phase: str):
    """Charge `phase` of `item` the CPU its tree uses meanwhile, failed or not (the body of a
    hook wrapper)."""
    if not _enabled(item.config):
        return (yield)
    before = tree_cpu_seconds(os.getpid())
    try:
        return (yield)
    finally:
        item.stash.setdefault(_PHASES, {})[phase] = tree_cpu_seconds(os.getpid()) - before


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _measured(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _measured(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    return (yield from _measured(item, "teardown"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    seconds = item.stash.get(_PHASES, {}).get(call.when)
    if seconds is not None:
        report.user_properties.append((PROPERTY, seconds))
    return report


def summarize(reports: list[pytest.TestReport]) -> tuple[dict[str, float], list[tuple]]:
    """CPU seconds per module, and every (seconds, phase, test id), heaviest first."""
    modules: dict[str, float] = defaultdict(float)
    phases = []
    for report in reports:
        for name, seconds in report.user_properties:
            if name == PROPERTY:
                modules[report.nodeid.split("::", 1)[0]] += seconds
                phases.append((seconds, report.when, report.nodeid))
    return dict(sorted(modules.items(), key=lambda item: -item[1])), sorted(phases, reverse=True)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _enabled(config) or _STARTED not in config.stash:
        return
    # Every phase's report: passed set-ups and teardowns are kept under the category "".
    reports = [
        report
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport)
    ]
    modules, phases = summarize(reports)
    total = sum(modules.values())
    busy = machine_busy_seconds() - config.stash[_STARTED]
    write = terminalreporter.write_line
    terminalreporter.section("CPU by test module (process trees, --cpu-usage)")
    write(f"{'CPU s':>9}  {'share':>6}  module")
    for module, seconds in modules.items():
        write(f"{seconds:9.1f}  {seconds / total if total else 0:6.1%}  {module}")
    write(f"{total:9.1f}  tests' process trees; the machine was busy {busy:.1f} CPU-s meanwhile")
    write("heaviest phases:")
    for seconds, phase, nodeid in phases[:15]:
        write(f"{seconds:9.1f}  {phase:<8}  {nodeid}")
