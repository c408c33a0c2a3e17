"""The README and the docs site as a newcomer meets them: short, runnable as written, current.

The site itself is built with `mkdocs build --strict` by `make docs-check` (part of `make test`):
broken links and anchors, pages missing from the nav and stale generated pages fail there."""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_billing.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
# The README and every page of the site: their shell blocks are written to run on a fresh clone.
RUNNABLE_PAGES = (README, *sorted((REPO_ROOT / "docs").glob("*.md")))
SHELL_BLOCK = re.compile(r"^ *```(?:bash|sh|shell)\n(.*?)^ *```", re.DOTALL | re.MULTILINE)
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
# Programs whose `--help` would run something else: they are only checked to exist.
NO_HELP = {"python", "python3"}


def shell_commands(page: Path) -> list[list[str]]:
    """Every command of the page's bash/sh blocks, as words, without comments, environment
    assignments in front, and continuation lines joined."""
    commands = []
    for block in SHELL_BLOCK.findall(page.read_text()):
        pending = ""
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            pending += line + "\n"
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quoted argument goes on over the next line
                continue
            pending = ""
            for part in _split_on_operators(words):
                while part and ENV_ASSIGNMENT.match(part[0]):
                    part.pop(0)
                if part:
                    commands.append(part)
        assert not pending, f"unclosed quote in a shell block of {page.name}: {pending}"
    return commands


def _split_on_operators(words: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "||", ";", "|"):
            parts.append([])
        else:
            parts[-1].append(word)
    return parts


def make_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9_.-]*):(?!=)", text, re.MULTILINE))


def _subcommands(words: list[str]) -> list[str]:
    """The leading subcommands and arguments, up to the first option or file path."""
    head = []
    for word in words:
        if word.startswith("-") or "/" in word:
            break
        head.append(word)
    return head


@functools.cache
def _help_exit(command: tuple[str, ...], cwd: Path) -> tuple[int, str]:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stderr[-500:]


def check_command(words: list[str], cwd: Path) -> str | None:
    """None when the command's program exists and answers --help; else what is wrong."""
    program, args = words[0], words[1:]
    if program == "make":
        targets = [arg for arg in args if not ENV_ASSIGNMENT.match(arg) and "=" not in arg]
        missing = [target for target in targets if target not in make_targets()]
        return f"make targets not in the Makefile: {missing}" if missing else None
    path = cwd / program if "/" in program else None
    if path is not None:
        if not path.exists():
            return f"{program} does not exist"
        executable = str(path)
    else:
        executable = shutil.which(program)
        if executable is None:
            return f"{program} is not installed"
    if Path(program).name in NO_HELP:
        if args[:1] == ["-m"]:
            target = ["-m", args[1]]
        elif args and args[0].endswith(".py"):
            target = [args[0]]
        else:
            return None
        returncode, _ = _help_exit((executable, *target, "--help"), cwd)
        return None if returncode == 0 else f"{' '.join(words[:3])} --help failed"
    command = (executable, *_subcommands(args), "--help")
    returncode, stderr = _help_exit(command, cwd)
    return None if returncode == 0 else f"{' '.join(command)} exited {returncode}: {stderr}"


def test_the_readme_is_a_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    text = README.read_text()
    for gone in ("PRODUCT.md", "this branch", "load average"):
        assert gone not in text


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: p.name)
def test_every_shell_command_of_the_page_exists(page):
    """As a reader would run them, in order: a `cd` moves the rest of the page there."""
    cwd, problems = REPO_ROOT, []
    for words in shell_commands(page):
        if words[0] == "cd":
            cwd = (cwd / words[1]).resolve()
            if not cwd.is_dir():
                problems.append(f"cd {words[1]}: no such directory")
                break
        elif problem := check_command(words, cwd):
            problems.append(problem)
    assert not problems, "\n".join(problems)


def test_a_missing_command_or_target_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nmake demo   # fine\nmake no-such-target\n"
        "BILLING_DATA_DIR=data .venv/bin/billing no-such-command --x 1\n"
        ".venv/bin/not-there\n```\n"
    )
    commands = shell_commands(page)
    assert commands[0] == ["make", "demo"]
    assert commands[2][:2] == [".venv/bin/billing", "no-such-command"]
    assert [check_command(words, REPO_ROOT) is None for words in commands] == [
        True,
        False,
        False,
        False,
    ]


def test_the_pictures_and_concepts_name_every_asset_group_in_flow_order():
    from dagster_billing.defs.groups import FLOW

    for page in (README, REPO_ROOT / "docs" / "concepts.md", REPO_ROOT / "docs" / "index.md"):
        picture = re.search(r"^```\n(.*?)^```", page.read_text(), re.DOTALL | re.MULTILINE)[1]
        missing = [group for group in FLOW if not re.search(rf"\b{group}\b", picture)]
        assert not missing, (page.name, missing)
    concepts = (REPO_ROOT / "docs" / "concepts.md").read_text()
    headings = " ".join(re.findall(r"^### (.+)$", concepts, re.MULTILINE))
    order = [headings.find(group) for group in FLOW]
    assert -1 not in order and order == sorted(order), headings


def test_generated_pages_are_current():
    completed = subprocess.run(
        [sys.executable, "scripts/generate_docs.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout
