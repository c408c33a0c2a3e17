"""Work every dbt invocation repeats, done once: in the dbt fork server before it forks
(decision 110), and for templates within one invocation.

- **Jinja templates.** dbt compiles every macro it calls and the SQL of every node it runs from
  Jinja source to Python code (`jinja2.Environment.compile`: lex, parse, generate Python source,
  `compile()`) in every process, and again for each node whose source it has compiled before (a
  generic test's SQL is the same call for every test of its kind). What the compiled code
  depends on is the source and the environment's configuration: its class (dbt's text and native
  environments generate different code), its extensions, filters and tests, `finalize`,
  `optimized`, async mode and lexer settings (the code generator reads nothing else; `undefined`
  and `concat` are looked up when the code runs). `reuse_compiled_templates()` keeps each
  compiled code object under that key and hands it back for the same key; `billing-dbt`
  installs it in every dbt process (lib/dbt_cli.py). A stale or missing manifest costs time,
  never correctness: a source that differs is a new key.
- **Validation schemas.** dbt validates dbt_project.yml, the profile and a few configurations
  against JSON schemas it builds from their dataclasses the first time (`json_schema()`, cached
  per process): about 0.4 s of CPU per invocation. A full parse (a new seed directory or
  engine, a new target folder) validates every node and YAML entry too: about 1.5 s more.

`warm_up(manifest_path)` does both in the fork server: it compiles every macro and node of the
project's last parse (target/manifest.json) and builds those schemas, so an invocation forked
from it compiles only templates it has not seen (a macro edited since the parse, SQL generated at
run time). Measured: a dbt build of the parity fixture through the server 9.4 → 8.6 CPU-s with
the templates alone (8 pairs); a full parse through it 7.9-8.2 → 6.1-6.6 CPU-s with the parse's
schemas too (decision 117).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import CodeType
from typing import Any

# (environment configuration, source, name, filename, defer_init) -> compiled template code
_COMPILED: dict[tuple, CodeType] = {}


def _configuration(environment: Any) -> tuple:
    """Everything of `environment` that jinja2's lexer, parser and code generator read."""
    return (
        type(environment),
        tuple(sorted(environment.extensions)),
        frozenset(environment.filters.items()),
        frozenset(environment.tests.items()),
        environment.finalize,
        environment.optimized,
        environment.is_async,
        environment.block_start_string,
        environment.block_end_string,
        environment.variable_start_string,
        environment.variable_end_string,
        environment.comment_start_string,
        environment.comment_end_string,
        environment.line_statement_prefix,
        environment.line_comment_prefix,
        environment.trim_blocks,
        environment.lstrip_blocks,
        environment.newline_sequence,
        environment.keep_trailing_newline,
    )


def reuse_compiled_templates() -> None:
    """Make dbt's Jinja environments (text and native) keep the code of every template source
    they compile and reuse it for the same source and configuration. Idempotent."""
    from dbt_common.clients import jinja as dbt_jinja

    for environment_class in (dbt_jinja.MacroFuzzEnvironment, dbt_jinja.NativeSandboxEnvironment):
        if getattr(environment_class.compile, "reuses_compiled_code", False):
            continue
        upstream = environment_class.compile

        def compile(  # jinja2.Environment.compile, same name and signature
            self,
            source,
            name=None,
            filename=None,
            raw=False,
            defer_init=False,
            _upstream=upstream,
        ):
            if raw or not isinstance(source, str):
                return _upstream(self, source, name, filename, raw, defer_init)
            key = (_configuration(self), source, name, filename, defer_init)
            code = _COMPILED.get(key)
            if code is None:
                code = _upstream(self, source, name, filename, raw, defer_init)
                _COMPILED[key] = code
            return code

        compile.reuses_compiled_code = True
        environment_class.compile = compile


# The dataclasses dbt validates in every build (dbt_project.yml, profiles.yml, selectors, hooks,
# test results), by module and class name.
VALIDATED_EVERY_RUN = (
    ("dbt.contracts.project", "ProjectFlags"),
    ("dbt.contracts.project", "ProfileConfig"),
    ("dbt.contracts.project", "Project"),
    ("dbt.contracts.project", "PackageConfig"),
    ("dbt.contracts.project", "Configuration"),
    ("dbt.contracts.selection", "SelectorFile"),
    ("dbt.artifacts.resources.v1.config", "Hook"),
    ("dbt.task.test", "TestResultData"),
    ("dbt.adapters.duckdb.credentials", "DuckDBCredentials"),
)
# And those it validates when it parses the project anew (a new seed directory or engine: every
# model, seed, test, hook and YAML entry): about a fifth of a full parse's CPU (1.5 of 7.8 s).
VALIDATED_WHEN_PARSING = (
    ("dbt.contracts.graph.nodes", "ModelNode"),
    ("dbt.contracts.graph.nodes", "SeedNode"),
    ("dbt.contracts.graph.nodes", "HookNode"),
    ("dbt.contracts.graph.nodes", "GenericTestNode"),
    ("dbt.contracts.graph.nodes", "SingularTestNode"),
    ("dbt.contracts.graph.unparsed", "UnparsedSourceDefinition"),
    ("dbt.contracts.graph.unparsed", "UnparsedModelUpdate"),
    ("dbt.contracts.graph.unparsed", "UnparsedNodeUpdate"),
    ("dbt.contracts.graph.unparsed", "UnparsedUnitTest"),
    ("dbt.artifacts.resources.v1.seed", "SeedConfig"),
    ("dbt.artifacts.resources.v1.config", "NodeConfig"),
    ("dbt.artifacts.resources.v1.config", "TestConfig"),
    ("dbt.artifacts.resources.v1.model", "ModelConfig"),
    ("dbt.artifacts.resources.v1.source_definition", "SourceConfig"),
    ("dbt.artifacts.resources.v1.components", "Contract"),
    ("dbt.artifacts.resources.v1.unit_test_definition", "UnitTestConfig"),
)


def warm_up(manifest_path: Path) -> None:
    """What a fork server does before it forks: compile the project's templates and build the
    validation schemas of VALIDATED_EVERY_RUN and VALIDATED_WHEN_PARSING (lib/dbt_server.py,
    `billing dbt-server`)."""
    import importlib

    compile_project_templates(manifest_path)
    for module, name in VALIDATED_EVERY_RUN + VALIDATED_WHEN_PARSING:
        try:
            getattr(importlib.import_module(module), name).json_schema()
        except (ImportError, AttributeError):
            continue


def compile_project_templates(manifest_path: Path) -> int:
    """Compile every macro and node template of a dbt manifest (as dbt's run-time environment
    would) so that processes forked from this one reuse the code; the number compiled. A
    template that does not compile is left for dbt to report when it uses it."""
    from dbt_common.clients.jinja import get_environment

    reuse_compiled_templates()
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return 0
    sources = {macro["macro_sql"] for macro in manifest.get("macros", {}).values()}
    sources |= {node.get("raw_code") or "" for node in manifest.get("nodes", {}).values()}
    environment = get_environment()
    compiled = 0
    for source in sources:
        try:
            environment.compile(source)
        except Exception:  # dbt reports it if a run uses the template
            continue
        compiled += 1
    return compiled
