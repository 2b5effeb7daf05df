"""Objectives: which candidate column the planner minimises.

Names match `simulator.schema.scenario.Objective`. Serving plans map the
training names onto their nearest serving meaning (time -> p99 TTFT).
"""
from __future__ import annotations

import numpy as np

from simulator.errors import InputError

# objective -> candidate column (all minimised)
TRAINING_COLUMNS = {
    "cost_usd": "cost_usd",
    "time_to_train_s": "time_to_train_s",
    "energy_kwh": "energy_kwh",
    "step_time_s": "step_time_s",
    "usd_per_million_tokens": "usd_per_million_tokens",
    "devices": "devices",
    "co2_kg": "co2_kg",
}
SERVING_COLUMNS = {
    "cost_usd": "cost_usd",                      # USD per hour of serving at the scenario rate
    "usd_per_million_tokens": "usd_per_million_tokens",
    "devices": "devices",
    "energy_kwh": "energy_kwh",
    "co2_kg": "co2_kg",
    "time_to_train_s": "ttft_p99_s",
    "step_time_s": "tpot_p99_s",
}


def objective_column(objective: str, kind: str = "training") -> str:
    table = SERVING_COLUMNS if kind == "serving" else TRAINING_COLUMNS
    if objective not in table:
        raise InputError(f"objective '{objective}' does not apply to a {kind} plan", field="objective",
                         expected=", ".join(table))
    return table[objective]


def rank(columns: dict, objective: str, kind: str = "training", mask=None) -> np.ndarray:
    """Candidate indices ordered best first by the objective, ties broken by time, cost, index.

    `mask` (bool array) restricts to a subset (e.g. the feasible ones); NaN sorts last.
    """
    key = np.asarray(columns[objective_column(objective, kind)], dtype=float)
    n = key.size
    idx = np.arange(n) if mask is None else np.flatnonzero(mask)
    time_col = "time_to_train_s" if kind == "training" else "ttft_p99_s"
    t = np.nan_to_num(np.asarray(columns.get(time_col, np.zeros(n)), dtype=float), nan=np.inf)
    c = np.nan_to_num(np.asarray(columns.get("cost_usd", np.zeros(n)), dtype=float), nan=np.inf)
    k = np.nan_to_num(key, nan=np.inf)
    return idx[np.lexsort((idx, c[idx], t[idx], k[idx]))]
