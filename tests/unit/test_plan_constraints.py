import numpy as np
import pytest

from simulator.errors import InfeasibleError
from simulator.plan import constraints as cons
from simulator.schema.scenario import Constraints

COLS = {"time_to_train_s": np.array([86400.0 * 10, 86400.0 * 2, 86400.0 * 1]),
        "cost_usd": np.array([100.0, 300.0, 900.0]), "devices": np.array([8, 64, 256]),
        "power_kw": np.array([5.0, 40.0, 160.0]),
        "memory_bytes_per_device": np.array([10.0, 50.0, 90.0]), "capacity_bytes": np.array([80.0, 80.0, 80.0])}


def test_feasibility_and_violations():
    ok, violated = cons.feasibility(COLS, Constraints(deadline_days=5, budget_usd=500))
    assert ok.tolist() == [False, True, False]
    assert cons.violations_of(0, violated) == ["deadline_days"]
    assert cons.violations_of(2, violated) == ["budget_usd", "fits_memory"]


def test_jointly_infeasible_names_binding_constraints_and_nearest():
    c = Constraints(deadline_days=1.5, budget_usd=150)
    ok, violated = cons.feasibility(COLS, c)
    assert not ok.any()
    text = cons.explain(COLS, c, violated)
    assert "deadline_days" in text and "budget_usd" in text
    near = cons.nearest(COLS, c, k=2)
    assert near.tolist() == [1, 2]   # summed relative excess: 1.33, 5.13, 5.67


def test_impossible_single_constraint_raises():
    with pytest.raises(InfeasibleError) as e:
        cons.check_possible(COLS, Constraints(budget_usd=50), lambda i: f"cand{i}", "s.yaml")
    msg = e.value.one_line()
    assert "budget_usd" in msg and "100" in msg and "cand0" in msg


def test_power_cap_and_device_limit():
    ok, _ = cons.feasibility(COLS, Constraints(power_cap_kw=50, max_devices=100, fits_memory=False))
    assert ok.tolist() == [True, True, False]
