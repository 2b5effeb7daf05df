import numpy as np

from simulator.plan.objectives import rank
from simulator.plan.pareto import dominated_mask, pareto_front


def test_front_of_a_known_set():
    t = [3.0, 1.0, 2.0, 2.0, 4.0]
    c = [1.0, 3.0, 2.0, 5.0, 1.0]
    # (1,3), (2,2), (3,1) are on the front; (2,5) and (4,1) are dominated
    assert pareto_front(t, c).tolist() == [1, 2, 0]
    assert dominated_mask(t, c).tolist() == [False, False, False, True, True]


def test_nan_never_on_front_and_ties_keep_first():
    t = [1.0, 1.0, np.nan, 0.5]
    c = [2.0, 2.0, 0.1, np.nan]
    assert pareto_front(t, c).tolist() == [0]


def test_empty():
    assert pareto_front([], []).size == 0


def test_rank_objective_then_ties_by_time_cost_index():
    cols = {"cost_usd": np.array([5.0, 1.0, 1.0, np.nan]), "time_to_train_s": np.array([1.0, 3.0, 2.0, 0.1]),
            "devices": np.array([1, 2, 3, 4])}
    assert rank(cols, "cost_usd").tolist() == [2, 1, 0, 3]
    assert rank(cols, "cost_usd", mask=np.array([True, True, False, True])).tolist() == [1, 0, 3]
    assert rank(cols, "devices").tolist() == [0, 1, 2, 3]
