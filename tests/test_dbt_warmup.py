"""What the dbt fork server does once instead of every dbt invocation (lib/dbt_warmup.py,
decisions 110 and 117): Jinja code compiled once per source and environment configuration, and
reused only for the same ones; dbt's validation schemas built, those of a full parse included.
Every dbt invocation of the suite runs with it (billing-dbt installs it; the session's fork
servers warm up from the manifest), so a wrong reuse would fail them too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jinja2.exceptions import TemplateAssertionError

from dagster_billing.lib.dbt_warmup import compile_project_templates, reuse_compiled_templates
from dagster_billing.paths import DBT_MANIFEST_PATH, DBT_PROJECT_DIR


@pytest.fixture(scope="module")
def get_environment():
    from dbt_common.clients.jinja import get_environment

    reuse_compiled_templates()
    return get_environment


def test_the_same_source_in_the_same_configuration_compiles_once(get_environment):
    source = "select {{ 40 + 2 }} as answer -- dbt_warmup test"
    first = get_environment().compile(source)
    again = get_environment().compile(source)

    assert again is first
    assert (
        get_environment().from_string(source).render({}) == "select 42 as answer -- dbt_warmup test"
    )


def test_another_environment_configuration_compiles_its_own_code(get_environment):
    # dbt's native environment (YAML configs, vars) generates other code for the same source:
    # `yield x` where the text environment has `yield str(x)`. Compiled in text first, native
    # must still get its own code.
    source = "{{ x }} and {{ y }}"
    text = get_environment().compile(source)
    native = get_environment(native=True).compile(source)
    assert native is not text
    assert native is get_environment(native=True).compile(source)
    assert get_environment().compile(source, raw=True) != get_environment(native=True).compile(
        source, raw=True
    )

    # The filters the code generator sees are part of the configuration too: a source that
    # compiles with a filter still fails without it.
    with_filter = get_environment()
    with_filter.filters["shout"] = str.upper
    source = "{{ 'x' | shout }}"
    with_filter.compile(source)
    with pytest.raises(TemplateAssertionError, match="No filter named 'shout'"):
        get_environment().compile(source)


def test_the_project_templates_are_compiled_before_dbt_asks(get_environment):
    compiled = compile_project_templates(DBT_MANIFEST_PATH)
    macros = json.loads(DBT_MANIFEST_PATH.read_text())["macros"]
    table_rules = next(m for m in macros.values() if m["name"] == "test_table_rules")

    # Every macro and node of the last parse (dbt's own macros, the adapters', the project's).
    assert compiled > 500
    assert get_environment().compile(table_rules["macro_sql"]) is get_environment().compile(
        table_rules["macro_sql"]
    )
    assert compile_project_templates(Path("/nonexistent/manifest.json")) == 0


# A fresh interpreter, warmed as the fork server is, then a full parse of the project (a new
# target folder: no saved parse), counting the validation schemas dbt still has to build.
_PARSE_AFTER_WARM_UP = """
import json, sys
import dbt_common.dataclass_schema as schema
from dagster_billing.lib.dbt_cli import run_dbt
from dagster_billing.lib.dbt_warmup import warm_up
from dagster_billing.paths import DBT_MANIFEST_PATH

warm_up(DBT_MANIFEST_PATH)
built = []
upstream = schema.build_json_schema
def build_json_schema(cls, *args, **kwargs):
    built.append(cls.__qualname__)
    return upstream(cls, *args, **kwargs)
schema.build_json_schema = build_json_schema
code = run_dbt(["dbt", "parse", "--quiet", "--target-path", sys.argv[1]])
print(json.dumps({"code": code, "built": built}))
"""


@pytest.mark.slow
def test_a_full_parse_after_the_warm_up_builds_no_validation_schema(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", _PARSE_AFTER_WARM_UP, str(tmp_path / "target")],
        cwd=DBT_PROJECT_DIR,
        env=os.environ | {"BILLING_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result == {"code": 0, "built": []}
    # It was a full parse: the saved parse it wrote is there.
    assert (tmp_path / "target" / "partial_parse.msgpack").exists()
