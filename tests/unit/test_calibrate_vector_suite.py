"""The vector-class microbenchmarks (layernorm, softmax, maxpool, gap), the executor's attention
scale, the steady heap and validate's per-op-kind summary (simulator/calibrate/suite.py,
execute.py, harness.py, validate.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.calibrate.harness import Settings
from simulator.calibrate.suite import VECTOR_SHAPES, _vector_flops, plan_suite, run_suite
from simulator.graph.importers.cnn import build_sequential
from simulator.graph.ops import PER_ELEMENT_FLOPS

TINY = Settings(warmup=1, repeats=3, min_sample_s=1e-4)


@pytest.fixture(scope="module")
def smoke_backend():
    from simulator.calibrate.bench_numpy import numpy_backend
    return numpy_backend(smoke=True)


def test_vector_tests_are_planned_run_and_classed(smoke_backend):
    tasks = plan_suite(smoke_backend, quick=True, settings=TINY, only=list(VECTOR_SHAPES))
    labels = [t.label.split(" ")[0] for t in tasks]
    assert set(labels) == set(VECTOR_SHAPES)
    ms = run_suite(tasks)
    classes = {m.test: m.op_class for m in ms}
    assert classes == {"layernorm": "norm", "softmax": "softmax", "maxpool": "pooling", "gap": "pooling"}
    for x in ms:
        assert x.duration_s > 0 and x.flops > 0 and x.dtype == "fp32"
        shape = tuple(int(v) for v in x.shape.split("x"))
        assert x.flops == _vector_flops(x.test, shape)


def test_vector_flops_follow_the_graph_conventions():
    assert _vector_flops("layernorm", (256, 1024)) == PER_ELEMENT_FLOPS["layernorm"] * 256 * 1024
    assert _vector_flops("softmax", (1024, 256)) == PER_ELEMENT_FLOPS["softmax"] * 1024 * 256
    shape = VECTOR_SHAPES["maxpool"](262144)
    g = build_sequential([("maxpool", 2, 2)], input_shape=shape, dt=4.0, dtype="fp32")
    pool = next(a for _, a in g.nodes(data=True) if a["kind"] == "pooling")
    assert _vector_flops("maxpool", shape) == pool["flops"]
    shape = VECTOR_SHAPES["gap"](262144)
    g = build_sequential([("gap",)], input_shape=shape, dt=4.0, dtype="fp32")
    gap = next(a for _, a in g.nodes(data=True) if a["kind"] == "pooling")
    assert _vector_flops("gap", shape) == gap["flops"]


def test_attention_scores_are_scaled_as_in_a_transformer():
    """1/sqrt(d) folded into the query weights: scores O(1), no subnormal exp in the softmax."""
    from simulator.calibrate.cases import build_case
    from simulator.calibrate.execute import prepare
    g = build_case("transformer-block")
    steps = prepare(g, np, np.random.default_rng(0))
    for s in steps:
        s.run()
    score = next(s for s in steps if s.kind == "attention_score")
    out = next(c.cell_contents for c in score.run.__closure__ if isinstance(c.cell_contents, np.ndarray))
    assert out.shape[1] == 16 and 0.1 < float(out.std()) < 5.0
    probs = np.exp(out - out.max(axis=-1, keepdims=True))
    assert float(np.min(probs)) > np.finfo(np.float32).tiny      # no subnormal intermediate


def test_steady_heap_is_idempotent():
    from simulator.calibrate.harness import steady_heap
    first = steady_heap()
    assert isinstance(first, bool) and steady_heap() is first


def test_by_kind_summary_sums_kinds_over_cases():
    from simulator.calibrate.validate import CaseResult, ValidationReport, by_kind_line, by_kind_summary
    a = CaseResult("a", 3, 1.0, 1.25, {"matmul": {"ops": 2, "measured_s": 0.75, "predicted_s": 1.0},
                                       "norm": {"ops": 1, "measured_s": 0.25, "predicted_s": 0.25}})
    b = CaseResult("b", 1, 0.25, 0.5, {"matmul": {"ops": 1, "measured_s": 0.25, "predicted_s": 0.5}})
    out = by_kind_summary([a, b])
    assert list(out) == ["matmul", "norm"]
    assert out["matmul"]["ops"] == 3 and out["matmul"]["measured_s"] == pytest.approx(1.0)
    assert out["matmul"]["error"] == pytest.approx(0.5)
    assert out["norm"]["error"] == pytest.approx(0.0)
    rep = ValidationReport("numpy", "cpu", 1, "t", "p", [a, b])
    assert rep.to_json()["by_kind"] == out
    assert by_kind_line(rep).startswith("per op kind: matmul +50.0% (3), norm +0.0% (1)")


def test_new_measurement_classes_round_trip_through_the_store(tmp_path):
    from simulator.calibrate.store import open_store
    from simulator.schema.calibration import Fingerprint, Measurement
    ms = [Measurement(test=t, op_class=c, dtype="fp32", shape="8x1024", flops=5e4, bytes=6e4,
                      duration_s=3e-5, min_s=2e-5, max_s=4e-5, repeats=3)
          for t, c in (("layernorm", "norm"), ("softmax", "softmax"), ("gap", "pooling"))]
    with open_store(tmp_path / "s.sqlite") as st:
        run_id = st.record_run(Fingerprint(backend="numpy", device="cpu"), ms, quick=True)
        assert st.get_run(run_id).measurements == ms
