"""Pipeline schedules: the order in which each device runs its forward and backward tasks.

A task is (pass, micro-batch, local chunk): pass "F" or "B"; the chunk's
virtual stage is `chunk * pp + device`. The orders follow Megatron-LM
(megatron/schedules.py, 2021): GPipe runs all forwards then all backwards
(Huang et al. 2019); 1F1B (PipeDream-Flush, Narayanan et al. 2021 section
2.2.1) warms up with pp - rank - 1 forwards, then alternates one forward and
one backward, then drains; the interleaved schedule (section 2.2.2) gives
each device v chunks and warms up with 2(pp - rank - 1) + (v - 1) pp
forwards. The engine plays these orders out; the bubble is what results.
"""
from __future__ import annotations

from simulator.errors import InputError

Task = tuple[str, int, int]


def gpipe_order(pp: int, device: int, m: int) -> list[Task]:
    return [("F", i, 0) for i in range(m)] + [("B", i, 0) for i in range(m)]


def one_f_one_b_order(pp: int, device: int, m: int) -> list[Task]:
    warm = min(pp - device - 1, m)
    order = [("F", i, 0) for i in range(warm)]
    for i in range(m - warm):
        order.append(("F", warm + i, 0))
        order.append(("B", i, 0))
    order += [("B", i, 0) for i in range(m - warm, m)]
    return order


def interleaved_order(pp: int, device: int, m: int, v: int) -> list[Task]:
    """Megatron's interleaved 1F1B: micro-batches in groups of pp cycle through the v chunks."""
    total = m * v
    if m == pp:
        warm = total
    else:
        warm = min((pp - device - 1) * 2 + (v - 1) * pp, total)

    def chunk(k: int, forward: bool) -> int:
        c = (k % (pp * v)) // pp
        return c if forward else v - 1 - c

    def micro(k: int) -> int:
        return (k // (pp * v)) * pp + k % pp

    order = [("F", micro(k), chunk(k, True)) for k in range(warm)]
    for i in range(total - warm):
        k = warm + i
        order.append(("F", micro(k), chunk(k, True)))
        order.append(("B", micro(i), chunk(i, False)))
    order += [("B", micro(k), chunk(k, False)) for k in range(total - warm, total)]
    return order


SCHEDULES = {
    "gpipe": lambda pp, d, m, v: gpipe_order(pp, d, m),
    "1f1b": lambda pp, d, m, v: one_f_one_b_order(pp, d, m),
    "interleaved": lambda pp, d, m, v: interleaved_order(pp, d, m, v) if v > 1 else one_f_one_b_order(pp, d, m),
}


def device_order(schedule: str, pp: int, device: int, m: int, v: int = 1) -> list[Task]:
    """Task order of `device` under `schedule` (registry keyed by the scenario's schedule name)."""
    try:
        make = SCHEDULES[schedule]
    except KeyError:
        raise InputError(f"unknown schedule '{schedule}'", field="parallelism.schedule",
                         expected=" | ".join(SCHEDULES)) from None
    return make(pp, device, m, v)
