"""Routers that pick a replica for each arriving request, keyed by the schema's `router` string."""
from __future__ import annotations

from typing import Callable, Sequence

from simulator.errors import UnknownNameError


def round_robin() -> Callable[[Sequence], int]:
    """Replica i % n for the i-th request."""
    state = {"next": 0}

    def pick(replicas: Sequence) -> int:
        i = state["next"]
        state["next"] = (i + 1) % len(replicas)
        return i
    return pick


def least_outstanding() -> Callable[[Sequence], int]:
    """The replica with the fewest queued + running requests; ties go to the lowest index."""
    def pick(replicas: Sequence) -> int:
        best, best_n = 0, None
        for i, r in enumerate(replicas):
            n = r.outstanding
            if best_n is None or n < best_n:
                best, best_n = i, n
        return best
    return pick


ROUTERS: dict[str, Callable[[], Callable[[Sequence], int]]] = {
    "round_robin": round_robin,
    "least_outstanding": least_outstanding,
}


def make_router(kind: str) -> Callable[[Sequence], int]:
    try:
        return ROUTERS[kind]()
    except KeyError:
        raise UnknownNameError("router", kind, ROUTERS, field="serving.scheduler.router") from None
