"""`--cpu-usage` (tests/cpu_usage.py) charges each module the CPU of the processes its tests
start, in set-ups too, also a process whose parent exited before it (as Spark's JVM outlives
its dbt process), under pytest-xdist too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from dagster_billing.paths import REPO_ROOT

# A process that outlives the shell that started it, in a fixture (a set-up phase): the shell
# exits at once, its orphan burns about a second of CPU, then writes a file and exits.
BURNS = textwrap.dedent(
    """
    import subprocess, sys, time

    import pytest

    @pytest.fixture
    def orphan_burned(tmp_path):
        done = tmp_path / "done"
        burner = (
            "import time, pathlib, sys\\n"
            "start = time.process_time()\\n"
            "while time.process_time() - start < 1.0: pass\\n"
            "pathlib.Path(sys.argv[1]).write_text('ok')\\n"
        )
        subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -c "$0" "$1" &', burner, str(done)], check=True
        )
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return done.exists()

    def test_an_orphan_burned_a_second(orphan_burned):
        assert orphan_burned
    """
)
IDLE = "def test_nothing():\n    pass\n"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_each_module_is_charged_the_cpu_of_the_processes_it_started(tmp_path, workers):
    (tmp_path / "test_burns.py").write_text(BURNS)
    (tmp_path / "test_idle.py").write_text(IDLE)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.cpu_usage", "--cpu-usage", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), *workers, str(tmp_path)],
        cwd=REPO_ROOT,
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    charged = {
        module: float(seconds)
        for seconds, module in re.findall(
            r"^\s+([\d.]+)\s+[\d.]+%\s+(test_\w+\.py)$", completed.stdout, re.M
        )
    }
    assert set(charged) == {"test_burns.py", "test_idle.py"}, completed.stdout
    # The orphan's second, not only the shell's few milliseconds.
    assert charged["test_burns.py"] >= 0.9, completed.stdout
    assert charged["test_idle.py"] < 0.5, completed.stdout
    assert "the machine was busy" in completed.stdout
