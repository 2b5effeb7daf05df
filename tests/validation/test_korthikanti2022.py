"""Korthikanti et al. 2022 (arXiv:2205.05198) Table 5 iteration times: every row within +-10%.

A second published set, independent of Megatron-LM Table 1 (different year,
software, batch sizes, no data parallelism, sequence parallelism and selective
recompute). Rows and sources: tests/validation/data/korthikanti2022_a100.csv;
the one set of assumptions for all rows: benchmarks/korthikanti2022.py
`korthikanti_scenario`. The tolerance is what the model achieves today
(worst row about -8%, every row predicted slightly fast; see the benchmark),
not a target the constants were tuned to.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "validation" / "data" / "korthikanti2022_a100.csv"
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def table(benchmark_script):
    return benchmark_script("korthikanti2022").evaluate(DATA)


def test_every_row_has_a_source_and_a_published_time():
    with open(DATA, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model_size_label"], r["mode"]) for r in rows] == [
        (m, k) for m in ("22B", "175B", "530B", "1T") for k in ("full", "seqsel")]
    for r in rows:
        assert "2205.05198" in r["source"] and float(r["iteration_time_s"]) > 0
        assert int(r["tp"]) * int(r["pp"]) * int(r["dp"]) == int(r["num_gpus"])


@pytest.mark.parametrize("i", range(8))
def test_row_within_tolerance(table, i):
    r = table[i]
    assert abs(r["error"]) <= TOLERANCE, (
        f"{r['model']} {r['mode']}: predicted {r['predicted_step_s']:.2f} s vs {r['published_step_s']:.2f} s "
        f"({r['error']:+.1%})")


def test_selective_recompute_with_sequence_parallelism_is_faster_as_published(table, benchmark_script):
    """The paper's headline: seqsel is 29-32% faster than full recompute; the model must agree within 6%."""
    for model, (pred, pub) in benchmark_script("korthikanti2022").speedups(table).items():
        assert pred > 1.2, model
        assert pred / pub - 1.0 == pytest.approx(0.0, abs=0.06), f"{model}: {pred:.3f} vs {pub:.3f}"


def test_every_configuration_fits_in_memory(table):
    """The paper ran these layouts on 80 GB A100s, so the memory model must find that they fit."""
    for r in table:
        assert r["fits"], f"{r['model']} {r['mode']}: {r['memory_gib']:.1f} GiB"
