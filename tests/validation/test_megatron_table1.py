"""Megatron-LM Table 1 (Narayanan et al. 2021, SC'21): every row within +-10%.

Predicted step time from the bundled a100-sxm4-80gb profile, one set of
assumptions for all rows (benchmarks/megatron_table1.py `megatron_scenario`),
against the step time implied by the published per-GPU TFLOP/s under the
paper's FLOP count 96 B s l h^2 (1 + s/6h + V/16lh). Source of the table:
../shared/reference/megatron_table1_a100.csv (a copy is in tests/validation/data).
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table(benchmark_script):
    mod = benchmark_script("megatron_table1")
    return mod.evaluate(REPO / "tests" / "validation" / "data" / "megatron_table1_a100.csv")


def test_all_ten_rows_present(table):
    assert [r["model"] for r in table] == ["1.7B", "3.6B", "7.5B", "18B", "39B", "76B", "145B", "310B", "530B", "1T"]


@pytest.mark.parametrize("i", range(10))
def test_row_within_ten_percent(table, i):
    r = table[i]
    assert abs(r["error"]) <= 0.10, f"{r['model']}: predicted {r['predicted_step_s']:.2f} s vs {r['published_step_s']:.2f} s ({r['error']:+.1%})"


def test_paper_flop_formula_matches_1t_aggregate(benchmark_script):
    """Eq. 3 with the 1T row's published 163 TFLOP/s x 3072 GPUs gives the table's 502 PFLOP/s."""
    mod = benchmark_script("megatron_table1")
    row = [r for r in mod.rows(REPO / "tests" / "validation" / "data" / "megatron_table1_a100.csv") if r["model_size_label"] == "1T"][0]
    step = mod.published_step_s(row)
    assert mod.paper_flops(row) / step / 1e15 == pytest.approx(502.0, rel=0.01)
