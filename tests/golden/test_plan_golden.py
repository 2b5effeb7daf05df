"""Golden reports of every bundled scenario (`capplan plan scenarios/X.yaml`).

Each scenario is planned in process, its Markdown report compared with
tests/golden/plan/<scenario>.md (numbers at 4 significant figures; the report
has no timestamps and `wall_s` is not rendered), and its HTML checked for at
least three embedded plots and the Pareto table. For speed the goldens are
rendered with the full engine re-simulating only the single best candidate
(`top_k=1`) and serving scenarios over a 10 s horizon (`serving.duration_s=10`),
so their numbers differ a little from a default run of the CLI.

Regenerate after an intended model change:  CAPPLAN_UPDATE_GOLDEN=1 pytest tests/golden
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "plan"
SCENARIOS = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
UPDATE = os.environ.get("CAPPLAN_UPDATE_GOLDEN") == "1"


def _plan(name: str):
    from simulator.loading import read_mapping
    from simulator.plan.api import plan
    path = REPO / "scenarios" / f"{name}.yaml"
    overrides = ["serving.duration_s=10"] if "serving" in read_mapping(path) else []
    return plan(path, overrides=overrides, top_k=1)


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden_report(name):
    from simulator.report.plan_files import render
    report = _plan(name)
    md, html = render(report, "md"), render(report, "html")
    assert html.count("<img ") >= 3, "the HTML report needs at least three plots"
    assert "Pareto front" in html and "<table>" in html
    assert "## Pareto front: cost versus time" in md and "| hardware |" in md
    assert report.best_candidate is not None, report.infeasible_reason
    golden = GOLDEN / f"{name}.md"
    if UPDATE or not golden.exists():
        golden.write_text(md, encoding="utf-8")
        if not UPDATE:
            pytest.skip(f"wrote new golden {golden.name}; rerun to compare")
    assert md == golden.read_text(encoding="utf-8"), (
        f"{name}: report differs from {golden}; if the change is intended, rerun with CAPPLAN_UPDATE_GOLDEN=1")


def test_every_bundled_scenario_compares_the_required_hardware_kinds():
    """A100, an H100 or H200, an RTX card and a TPU-like profile in every scenario's sweep."""
    from simulator.loading import read_mapping
    for name in SCENARIOS:
        hw = read_mapping(REPO / "scenarios" / f"{name}.yaml")["sweep"]["cluster.hardware"]
        assert any(h.startswith("a100") for h in hw), name
        assert any(h.startswith(("h100", "h200")) for h in hw), name
        assert any(h.startswith("rtx") for h in hw), name
        assert any(h.startswith("tpu") for h in hw), name
