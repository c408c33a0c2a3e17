"""The benchmark harness, run end to end on a tiny size so it cannot rot. No timings asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest

from bench.harness import compare_answers, parse_size, size_label
from dagster_billing.paths import REPO_ROOT


@pytest.mark.slow
def test_smoke_run_of_every_variant_but_postgres(tmp_path):
    from dagster_billing.lib.dbt_server import SERVER_ENV

    results = tmp_path / "results"
    # The session's dbt fork server, rather than one started (dbt imported) per variant.
    server = ["--dbt-server-socket", os.environ[SERVER_ENV]] if SERVER_ENV in os.environ else []
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *server,
            "--size",
            "10K",
            "--no-postgres",
            "--no-spark",
            # One run of each floor: the fastest of several only matters for real timings.
            "--floor-runs",
            "1",
            "--out-dir",
            str(tmp_path / "out"),
            "--results-dir",
            str(results),
        ],
        cwd=REPO_ROOT,
        # The 1% batch as a bulk batch, as at 100M: land_and_rate alone, without a fast run
        # first (a fast run and land_and_rate run in tests/test_landing_sensor.py).
        env=os.environ | {"BILLING_BULK_LANDING_BYTES": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]

    report = json.loads((results / "bench-10K.json").read_text())
    assert set(report["variants"]) == {
        "floor",
        "read_landing_files",
        "pipeline_full",
        "floor_history_batch",
        "incremental",
        "floor_batch",
        "batch_alone",
    }
    assert report["variants"]["pipeline_full"]["events"] == 10_000
    assert report["variants"]["incremental"]["events"] == 100
    assert len(report["variants"]["incremental"]["detail"]["run_ids"]) == 1
    # Landing's floor reads every record the generator wrote as well-formed (it skips the
    # malformed ones landing quarantines), and the ratio to the landing phase is reported.
    read = report["variants"]["read_landing_files"]["detail"]
    assert 9_000 < read["rows"] <= 10_000
    assert report["ratios"]["landing_over_read"] > 0
    # The incremental run and the batch alone ran twice (--batch-runs' default), the second time
    # on a second batch: each sample's invoices against the floor's on the same events; the
    # faster sample is reported, both samples' seconds with it.
    assert [(c["reference"], c["candidate"]) for c in report["checks"]["comparisons"]] == [
        ("floor", "pipeline_full"),
        ("floor_history_batch", "incremental"),
        ("floor_batch", "batch_alone"),
        ("floor_history_batch-2", "incremental-2"),
        ("floor_batch-2", "batch_alone-2"),
    ]
    assert report["checks"]["identical"] is True
    for name in ("incremental", "batch_alone"):
        detail = report["variants"][name]["detail"]
        assert len(detail["runs_wall_s"]) == 2
        assert report["variants"][name]["wall_s"] == min(detail["runs_wall_s"])
    assert report["generation"]["batch_runs"] == 2
    # The usage models are incremental: the ratio measures work that follows the batch.
    assert report["targets"]["incremental_over_batch_alone"]["meaningful"] is True
    pipeline = report["variants"]["pipeline_full"]["detail"]
    assert {"landing", "dbt", "exports"} <= set(pipeline["phases"])
    # The report keeps dbt's slowest nodes (from run_results.json), slowest first.
    nodes = pipeline["dbt"]["nodes"]
    assert any(n["node"].startswith("model.billing.") for n in nodes)
    assert [n["execution_s"] for n in nodes] == sorted(
        (n["execution_s"] for n in nodes), reverse=True
    )
    assert (results / "bench-10K.png").read_bytes().startswith(b"\x89PNG")
    assert "pipeline / floor" in completed.stdout


def test_a_cent_of_difference_fails_the_comparison():
    reference = {"inv-a-2026-01-01": ("USD", Decimal("10.00"))}
    same_value_other_scale = {"inv-a-2026-01-01": ("USD", Decimal("10.0000"))}
    a_cent_off = {"inv-a-2026-01-01": ("USD", Decimal("10.01"))}
    outcomes = {"accepted": 3, "quarantined:unknown_meter": 1}

    assert compare_answers("floor", reference, outcomes, "p", same_value_other_scale, outcomes)[
        "identical"
    ]
    different = compare_answers("floor", reference, outcomes, "p", a_cent_off, outcomes)
    assert not different["identical"]
    assert "inv-a-2026-01-01" in different["differences"][0]


def test_missing_invoices_and_outcome_counts_fail_the_comparison():
    reference = {"inv-a": ("USD", Decimal("1")), "inv-b": ("EUR", Decimal("2"))}
    assert not compare_answers("floor", reference, {}, "p", {"inv-a": reference["inv-a"]}, {})[
        "identical"
    ]
    assert not compare_answers(
        "floor", reference, {"duplicate": 2}, "p", reference, {"duplicate": 1}
    )["identical"]
    assert not compare_answers("floor", {}, {}, "p", {}, {})["identical"]


@pytest.mark.parametrize(
    ("text", "events", "label"),
    [
        ("10K", 10_000, "10K"),
        ("1M", 1_000_000, "1M"),
        ("2.5M", 2_500_000, "2500K"),
        ("100", 100, "100"),
    ],
)
def test_sizes(text, events, label):
    assert parse_size(text) == events
    assert size_label(events) == label


@pytest.mark.parametrize("text", ["ten", "50", "1.5X"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_the_floor_rates_the_sample_plans_and_refuses_what_it_does_not_rate(tmp_path):
    from bench.floor import OutOfFloorScope, check_floor_scope
    from dagster_billing.paths import SEEDS_DIR

    check_floor_scope(SEEDS_DIR)  # the plans in plans/ (compiled seeds) are all in scope

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    charges = (seeds / "price_charges.csv").read_text().splitlines()
    header = charges[0].split(",")
    package = dict.fromkeys(header, "")
    package.update(
        plan_code="scale_2026",
        plan_version="1",
        charge_id="bundles",
        dimension_value="*",
        charge_order="11",
        dimension_match="all",
        meter_code="api.requests",
        pricing_model="package",
        package_size="1000",
        package_price="1",
        discount_percent="10",
    )
    charges.append(",".join(package[column] for column in header))
    (seeds / "price_charges.csv").write_text("\n".join(charges) + "\n")
    with (seeds / "billing_cycles.csv").open("a") as cycles:
        cycles.write("acct_meridian,15\n")
    with (seeds / "meters.csv").open("a") as meters:
        meters.write("llm.calls,sum,call,model|region,,LLM calls by model and region\n")
    with pytest.raises(OutOfFloorScope, match="bundles: pricing model package") as refused:
        check_floor_scope(seeds)
    assert "bundles: discount_percent" in str(refused.value)
    assert "billing_cycles acct_meridian: anniversary periods" in str(refused.value)
    assert "meters llm.calls: several dimension keys" in str(refused.value)


def test_the_pdf_bench_reports_wall_cpu_and_pdfs_per_second(tmp_path):
    out = tmp_path / "pdf_render.json"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/pdf_render.py",
            "--invoices",
            "3",
            "--processes",
            "1",
            "--out",
            out,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["invoices"] == 3 and result["byte_stable"] is True
    assert {"wall_s", "cpu_s", "pdfs_per_s", "cpu_ms_per_invoice", "target_met"} <= set(result)
    for label in ("3 invoice PDFs", "wall time", "CPU time", "PDFs/s", f"written to {out}"):
        assert label in completed.stdout, completed.stdout


@pytest.mark.slow
def test_the_ingest_load_test_sends_random_ids_and_counts_every_one_landed(tmp_path):
    """bench/ingest_load.py for one second with random uniqueIds (as uuid4's; decision 118):
    every accepted event is in a landing file and the API's claim table."""
    out = tmp_path / "ingest_load.json"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/ingest_load.py",
            *("--workers", "1", "--concurrency", "1", "--batch", "200"),
            *("--seconds", "1", "--warmup", "0.5", "--ids", "random"),
            *("--no-land", "--out", str(out)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    [case] = json.loads(out.read_text())["results"]
    assert case["ids"] == "random" and case["ok"] is True
    assert case["accepted"] == case["landed"]["lines"] == case["landed"]["ledger_ids"] > 0
    assert case["duplicate"] == case["rejected"] == 0
    assert "(random ids)" in completed.stdout


@pytest.mark.parametrize("kind", ["time-ordered", "random"])
def test_batch_ids_are_32_hex_digits_and_do_not_repeat(kind):
    from bench.ingest_load import batch_ids

    first, second = batch_ids(0, 0, 500, kind), batch_ids(0, 0, 500, kind)
    assert len(set(first + second)) == 1_000
    assert all(len(unique_id) == 32 for unique_id in first)
    assert all(int(unique_id, 16) >= 0 for unique_id in first)


def test_time_ordered_batch_ids_start_with_the_millisecond_as_the_sdks():
    from bench.ingest_load import batch_ids
    from dagster_billing.sdk import new_unique_id

    made = new_unique_id()
    [sent] = batch_ids(0, 0, 1, "time-ordered")
    assert abs(int(sent[:12], 16) - int(made[:12], 16)) < 1_000


def test_sequential_batch_ids_name_the_connection_batch_and_position():
    from bench.ingest_load import batch_ids

    assert batch_ids(3, 7, 2, "sequential") == ["c3-b7-0", "c3-b7-1"]
