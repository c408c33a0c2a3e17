"""`--cpu-usage`: the CPU each test module costs, the processes it starts included.

`make test` is bound by CPU (docs/testing.md): what a module costs is the CPU of the pytest
process and of every process under it (dbt, Dagster's daemon and code servers, Spark's JVM,
the API's workers, the browser) while its tests run, which pytest's wall-clock durations only
hint at under three workers on two cores.

    make test PYTEST_ARGS=--cpu-usage
    .venv/bin/pytest tests/test_quarantine.py --cpu-usage

Each phase of each test (setup, call, teardown) is charged the CPU its process tree used
meanwhile: the test process and its descendants (psutil), each with the CPU of the children it
has reaped. The test process is made a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`), so that
a process whose parent exits (Spark's JVM under a dbt process, a daemonized server) stays in the
tree instead of going to init; such processes stay zombies until the test process exits (a test
that waited for such a pid to vanish would wait on its zombie; none does). Reading the process
table twice per phase costs a few ms, about 1 % of a full run's CPU, and only with the option.
The figures travel with pytest-xdist's reports (`user_properties`), and the summary at the end
lists modules by CPU, the heaviest phases, and the machine's busy CPU over the session for
comparison: what the trees missed is the difference (processes started outside the session,
other load).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections import defaultdict

import psutil
import pytest

OPTION = "--cpu-usage"
PROPERTY = "cpu_s"
PR_SET_CHILD_SUBREAPER = 36
_STARTED = pytest.StashKey[float]()
_PHASES = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        default=False,
        help="charge each test the CPU of its process tree and list modules by CPU at the end",
    )


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of process `root` and its descendants (living or zombie), each with the CPU
    of the children it reaped."""
    process = psutil.Process(root)
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:  # exited and reaped meanwhile
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def machine_busy_seconds() -> float:
    """All CPUs' non-idle time since boot (guest time is counted in user time already)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


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
    if not _enabled(config):
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
