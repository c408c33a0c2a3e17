"""The one rounding rule, in Python (lib.money) and SQL (macro round_money), agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dagster_billing.lib.money import format_decimal, format_money, round_money

CASES = [
    ("10.125", 2, "10.13"),
    ("10.124999", 2, "10.12"),
    ("-10.125", 2, "-10.13"),
    ("100.5", 0, "101"),
    ("99.4999", 0, "99"),
    ("0.0005", 3, "0.001"),
    ("2.5", 0, "3"),
    ("0.0000000001", 2, "0.00"),
]


@pytest.mark.parametrize(("amount", "minor_units", "expected"), CASES)
def test_round_money_is_half_up_to_the_minor_unit(amount, minor_units, expected):
    assert round_money(Decimal(amount), minor_units) == Decimal(expected)
    assert str(round_money(Decimal(amount), minor_units)) == expected


def test_round_money_refuses_floats():
    with pytest.raises(TypeError):
        round_money(10.125, 2)


def test_format_money_refuses_unrounded_amounts():
    assert format_money(Decimal("130.0000"), 2) == "130.00"
    assert format_money(Decimal("101"), 0) == "101"
    with pytest.raises(ValueError, match="not rounded"):
        format_money(Decimal("10.125"), 2)


def test_format_decimal_has_no_exponent_or_trailing_zeros():
    assert format_decimal(Decimal("50000.0000000000")) == "50000"
    assert format_decimal(Decimal("0.0000001000")) == "0.0000001"
    assert format_decimal(Decimal("1E+6")) == "1000000"
    assert format_decimal(None) == ""


def test_sql_macro_rounds_like_python(tmp_path, monkeypatch):
    """Render the dbt macro with dbt's own Jinja and run it on DuckDB for every case."""
    import duckdb
    from dbt.cli.main import dbtRunner

    from dagster_billing.paths import DBT_PROJECT_DIR

    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path))

    values = ", ".join(
        f"(cast('{amount}' as decimal(38,10)), {units})" for amount, units, _ in CASES
    )
    result = dbtRunner().invoke(
        [
            "compile",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--inline",
            f"select {{{{ round_money('amount', 'minor_units') }}}} as rounded from (values {values}) as t(amount, minor_units)",
        ]
    )
    assert result.success, result.exception
    sql = result.result.results[0].node.compiled_code
    rounded = [row[0] for row in duckdb.sql(sql).fetchall()]
    assert rounded == [round_money(Decimal(amount), units) for amount, units, _ in CASES]
