"""The portability macros give the same answers on DuckDB and PostgreSQL (and equal Python's exact
Decimal arithmetic): exact division half-up to 10 places, ceiling division, whole seconds between
timestamps, JSON fields, the last row of a group, a CTE inlined where it is read twice; and on
DuckDB the stored key hash keeps the values earlier warehouses hold. PostgreSQL runs as a
throwaway local server; skipped when it is missing."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import pytest

from bench.postgres import LocalPostgres, postgres_available
from dagster_billing.pricing.plan_types import dimension_combination, dimension_keys

DIVISIONS = [
    ("1", "3"),
    ("2", "3"),
    ("5", "7200"),  # 0.00069444444 -> half-up at the 10th place
    ("1", "20000000000"),  # exactly half of the last place: rounds up
    ("0.00000000004", "1"),  # below half of the last place: rounds down
    ("123456789.1234567891", "3600"),
    ("0", "3600"),
    ("999999999999.9999999999", "0.0000000007"),
    # a run-rate of a 10^12 monthly commitment: subtotal x period seconds / elapsed seconds
    ("2678400000000000000.0000", "1339200"),
    ("9999999999999999999999999999.9999999999", "3"),  # the DECIMAL(38,10) maximum
    ("2", "849999999999999999.9999999999"),
]
CEILINGS = [
    ("10", "3"),
    ("9", "3"),
    ("0", "5"),
    ("0.5", "0.25"),
    ("0.5000000001", "0.25"),
    ("1000000000000000000000", "10000000"),  # 10^21 units in packages of 10^7
]
SECONDS = [
    ("2026-01-01 00:00:00.900", "2026-01-01 00:00:01.100"),
    ("2026-01-01 00:00:01.000", "2026-01-01 00:00:01.999"),
    ("2026-01-31 23:59:59.999", "2026-02-01 00:00:00.000"),
    ("2026-01-01 00:00:00", "2026-03-01 00:00:00"),
]
JSON_ROWS = [
    ('{"model":"gpt-4o","region":"eu"}', "model"),
    ('{"model":"gpt-4o","region":"eu"}', "region"),
    ('{"user_id":"u_1"}', "model"),
    (None, "model"),
]
# Decision 81: an event's combination on a meter's keys, and a filter pattern against one.
COMBINATIONS = [
    ('{"region":"eu","model":"gpt-4o"}', "model|region"),
    ('{"region":"eu"}', "model|region"),
    ('{"user_id":"u_1"}', "model|region"),
    ('{"model":"a|b*%","region":"us","tier":"x"}', "region|model|tier"),
    ('{"model":"gpt-4o"}', "model"),
    ('{"region":"eu"}', "model"),
    ('{"model":"gpt-4o"}', None),
]
PATTERNS = [
    ("model=*|region=eu", "model=llama|region=eu", "yes"),
    ("model=*|region=eu", "model=*|region=eu", "yes"),
    ("model=*|region=eu", "model=llama|region=us", "no"),
    ("model=gpt-4o|region=eu", "model=gpt-4o|region=eu", "yes"),
    ("model=gpt-4o|region=eu", "model=gpt-4o|region=*", "no"),
    ("a=*|b=x|c=*", "a=1|b=x|c=2", "yes"),
    ("a=*|b=x|c=*", "a=1|b=y|c=2", "no"),
]

# last_by: per group, the value of the row that sorts last by (ts, file, line).
LAST_ROWS = [
    (0, "2026-01-20 00:00:00", 1, 10, "5"),
    (0, "2026-01-20 00:00:00", 2, 2, "6"),  # the same time in a later file: wins
    (0, "2026-01-10 00:00:00", 3, 1, "4"),  # a later file, an earlier time
    (1, "2026-01-01 00:00:00", 1, 2, "7.5"),  # the same time and file, a later line: wins
    (1, "2026-01-01 00:00:00", 1, 1, "8"),
    (2, "2026-01-02 00:00:00", 1, 1, "0.0000000001"),
]
LAST_VALUES = {0: Decimal("6"), 1: Decimal("7.5"), 2: Decimal("0.0000000001")}


def _exact_division(numerator: str, denominator: str) -> Decimal:
    with localcontext() as context:
        context.prec = 80
        return (Decimal(numerator) / Decimal(denominator)).quantize(
            Decimal("1e-10"), rounding=ROUND_HALF_UP
        )


def _exact_ceiling(numerator: str, denominator: str) -> int:
    with localcontext() as context:
        context.prec = 80
        return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_CEILING))


def _whole_seconds_crossed(start: str, end: str) -> int:
    def floor_second(text: str) -> int:
        return int(datetime.fromisoformat(text).timestamp() // 1)

    return floor_second(end) - floor_second(start)


def _values(rows: list[tuple], types: tuple[str, ...]) -> str:
    def literal(value, sql_type: str) -> str:
        if value is None:
            return f"cast(null as {sql_type})"
        text = str(value).replace("'", "''")
        return f"cast('{text}' as {sql_type})"

    return ", ".join(
        "("
        + str(index)
        + ", "
        + ", ".join(literal(v, t) for v, t in zip(row, types, strict=True))
        + ")"
        for index, row in enumerate(rows)
    )


QUERY = (
    "select 'divide' as kind, i, cast({{ divide_decimal('a', 'b') }} as varchar) as answer"
    f" from (values {_values(DIVISIONS, ('decimal(38,10)', 'decimal(38,10)'))}) as t(i, a, b)"
    " union all "
    "select 'ceil', i, cast({{ ceil_divide('a', 'b') }} as varchar)"
    f" from (values {_values(CEILINGS, ('decimal(38,10)', 'decimal(38,10)'))}) as t(i, a, b)"
    " union all "
    "select 'seconds', i, cast({{ seconds_between('s', 'e') }} as varchar)"
    f" from (values {_values(SECONDS, ('timestamp', 'timestamp'))}) as t(i, s, e)"
    " union all "
    "select 'json', i, {{ json_field('p', 'k') }}"
    f" from (values {_values(JSON_ROWS, ('varchar', 'varchar'))}) as t(i, p, k)"
    " union all "
    "select 'combination', i, {{ event_dimension_value('p', 'k') }}"
    f" from (values {_values(COMBINATIONS, ('varchar', 'varchar'))}) as t(i, p, k)"
    " union all "
    "select 'pattern', i, case when {{ dimension_matches('f', 'c') }} then 'yes' else 'no' end"
    f" from (values {_values(PATTERNS, ('varchar', 'varchar', 'varchar'))}) as t(i, f, c, e)"
    " union all "
    "select 'last', g, cast({{ last_by('v', ['ts', 'f', 'l']) }} as varchar)"
    f" from (values {_values(LAST_ROWS, ('integer', 'timestamp', 'integer', 'integer', 'decimal(38,10)'))})"
    " as t(i, g, ts, f, l, v) group by g"
)
# Read twice through a CTE written with inlined() (decision 100): the keyword must parse.
QUERY = (
    f"with answers as {{{{ inlined() }}}} ({QUERY})"
    " select * from answers where kind != 'last'"
    " union all select * from answers where kind = 'last'"
)

# table_rules (tests/generic/table_rules.sql, decision 108) on a table that breaks each of its
# rules: one failing row per broken rule and value, null in a key or a not-null column included,
# nulls left out of `unique` and `accepted_values`, a combination's nulls grouped together.
RULE_ROWS = [
    # id, code, a, b, n
    (1, "c1", 1, "x", "1.5"),
    (2, "c2", 1, "y", "2"),  # b not accepted
    (2, "c3", 2, "o'k", "3"),  # id twice; b accepted (a quote in a value)
    (None, "c4", 2, "x", "4"),  # no id
    (5, None, 2, "x", None),  # no code, no n; (a, b) = (2, x) twice
    (6, "c1", 3, "x", "6"),  # code c1 twice; a not accepted (a number)
    (7, None, 1, None, "7"),  # no code (a second row): nulls are not duplicates of `unique`
    (8, "c8", None, None, "8"),
    (9, "c9", None, None, "9"),  # (a, b) = (null, null) twice
]
RULE_TYPES = ("integer", "varchar", "integer", "varchar", "decimal(38,10)")
RULE_TABLE = (
    f"(select * from (values {_values(RULE_ROWS, RULE_TYPES)}) as t(i, id, code, a, b, n)) as m"
)
RULES_QUERY = (
    f'{{{{ test_table_rules(model="{RULE_TABLE}", primary_key="id", not_null=["code", "n"],'
    ' unique=["code"], unique_combinations=[["a", "b"]],'
    """ accepted_values={"b": ["x", "o'k"], "a": [1, 2]}) }}"""
)
RULE_FAILURES = {
    ("primary_key id", "2", 2),
    ("primary_key id", None, 1),
    ("not_null code", None, 2),
    ("not_null n", None, 1),
    ("unique code", "c1", 2),
    ("unique a, b", "2|x", 2),
    ("unique a, b", "|", 2),
    ("accepted_values b", "y", 1),
    ("accepted_values a", "3", 1),
}


def _compiled(target: str, query: str = QUERY) -> str:
    from dbt.cli.main import dbtRunner

    from dagster_billing.paths import DBT_PROJECT_DIR

    result = dbtRunner().invoke(
        [
            "compile",
            "--quiet",
            "--target",
            target,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--inline",
            query,
        ]
    )
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


def _answers(rows) -> dict[tuple[str, int], object]:
    parsed: dict[tuple[str, int], object] = {}
    for kind, index, answer in rows:
        if kind in ("divide", "last"):
            parsed[(kind, index)] = Decimal(answer)
        elif kind in ("ceil", "seconds"):
            parsed[(kind, index)] = int(answer)
        else:
            parsed[(kind, index)] = answer
    return parsed


def _expected() -> dict[tuple[str, int], object]:
    expected: dict[tuple[str, int], object] = {}
    for index, (numerator, denominator) in enumerate(DIVISIONS):
        expected[("divide", index)] = _exact_division(numerator, denominator)
    for index, (numerator, denominator) in enumerate(CEILINGS):
        expected[("ceil", index)] = _exact_ceiling(numerator, denominator)
    for index, (start, end) in enumerate(SECONDS):
        expected[("seconds", index)] = _whole_seconds_crossed(start, end)
    expected[("json", 0)] = "gpt-4o"
    expected[("json", 1)] = "eu"
    expected[("json", 2)] = None
    expected[("json", 3)] = None
    for index, (properties, keys) in enumerate(COMBINATIONS):
        values = json.loads(properties)
        expected[("combination", index)] = dimension_combination(dimension_keys(keys), values)
    for index, (_, _, answer) in enumerate(PATTERNS):
        expected[("pattern", index)] = answer
    for group, value in LAST_VALUES.items():
        expected[("last", group)] = value
    return expected


def test_macros_on_duckdb_match_exact_arithmetic(tmp_path, monkeypatch):
    import duckdb

    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path))
    rows = duckdb.sql(_compiled("duckdb")).fetchall()
    assert _answers(rows) == _expected()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL server binaries not installed")
def test_macros_on_postgres_match_duckdb_and_exact_arithmetic(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path))
    # The server's directory must be reachable by the `postgres` user when run as root, which
    # pytest's private tmp_path is not.
    with LocalPostgres(Path(tempfile.mkdtemp(prefix="billing-pg-"))) as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        sql = _compiled("postgres")
        rules_sql = _compiled("postgres", RULES_QUERY)
        connection = server.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                rows = cursor.fetchall()
                cursor.execute(rules_sql)
                failures = cursor.fetchall()
        finally:
            connection.close()
    assert _answers(rows) == _expected()
    # table_rules too (dbt's type_string and concat on PostgreSQL).
    assert len(failures) == len(set(failures))
    assert set(failures) == RULE_FAILURES


# Keys for key_hash: uniqueIds as the SDK and the generator make them, and the odd ones.
HASHED_KEYS = [
    "019b76daf83878d88006a56a92fa5874",
    "evt_0123456789abcdef",
    "",
    "a'b",
    "é日本語",
    "x" * 10_000,
    *(f"{n:032x}" for n in range(0, 2**128, 2**121 + 12345)),
]


def test_key_hash_on_duckdb_is_md5s_low_64_bits_as_earlier_warehouses_stored_it(
    tmp_path, monkeypatch
):
    """The hash is stored (decision 103), so a new expression must give the old values: md5's
    second eight bytes, little-endian, which is what md5_number_lower returned (decision 120)."""
    import hashlib

    import duckdb

    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path))
    keys = ", ".join("('" + key.replace("'", "''") + "')" for key in HASHED_KEYS)
    query = f"select k, {{{{ key_hash('k') }}}}, md5_number_lower(k) from (values {keys}) as t(k)"
    rows = duckdb.sql(_compiled("duckdb", query)).fetchall()
    assert len(rows) == len(HASHED_KEYS)
    for key, hashed, stored_before in rows:
        expected = int.from_bytes(hashlib.md5(key.encode()).digest()[8:], "little")
        assert (hashed, stored_before) == (expected, expected), key


def test_table_rules_return_one_row_per_broken_rule_on_duckdb(tmp_path, monkeypatch):
    import duckdb

    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path))
    failures = duckdb.sql(_compiled("duckdb", RULES_QUERY)).fetchall()
    assert len(failures) == len(set(failures))
    assert set(failures) == RULE_FAILURES
