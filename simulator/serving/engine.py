"""SimPy processes of the serving simulation: arrivals, router, replicas, queue probe.

One process replays the arrivals and routes each request; one process per
replica loops plan -> timeout(iteration cost) -> commit; a probe samples queue
lengths. The simulation stops at `duration_s`; requests still queued or running
are counted as in flight (arrived = completed + in flight + rejected).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import simpy

from simulator.serving.arrivals import Workload
from simulator.serving.scheduler import Iteration, ReplicaScheduler, Seq

IterationCost = Callable[[Iteration], float]
QUEUE_SAMPLES = 240


@dataclass
class Records:
    """Per-request times (NaN until known) and per-run counters."""

    arrival_s: np.ndarray
    output_tokens: np.ndarray
    first_sched_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    rejected: int = 0
    iterations: int = 0
    busy_s: float = 0.0
    batch_seqs: int = 0
    batch_tokens: int = 0
    events: int = 0

    @classmethod
    def empty(cls, w: Workload) -> "Records":
        n = len(w)
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        return cls(w.t_s, w.output_tokens, nan(), nan(), nan())


@dataclass
class Replica:
    sched: ReplicaScheduler
    wake: simpy.Event | None = None
    proc: simpy.Process | None = None
    in_stretch: bool = False          # running several decode-only steps as one timeout

    @property
    def outstanding(self) -> int:
        return self.sched.outstanding


def run(workload: Workload, make_scheduler: Callable[[], ReplicaScheduler], replicas: int,
        cost: IterationCost, router: Callable, duration_s: float):
    """Simulate `duration_s` seconds; returns (Records, queue samples, schedulers)."""
    env = simpy.Environment()
    reps = [Replica(make_scheduler()) for _ in range(replicas)]
    rec = Records.empty(workload)
    queue = {"t_s": [], "waiting": [], "running": []}
    env.process(_arrivals(env, workload, reps, router, rec))
    for rep in reps:
        rep.proc = env.process(_replica(env, rep, cost, rec))
    env.process(_probe(env, reps, queue, duration_s / QUEUE_SAMPLES))
    env.run(until=duration_s)
    return rec, queue, [r.sched for r in reps]


def _arrivals(env, w: Workload, reps: list[Replica], router, rec: Records):
    t, prompts, outputs = w.t_s.tolist(), w.prompt_tokens.tolist(), w.output_tokens.tolist()
    for i, ts in enumerate(t):
        if ts > env.now:
            yield env.timeout(ts - env.now)
        rec.events += 1
        rep = reps[router(reps)]
        if not rep.sched.fits_ever(prompts[i], outputs[i]):
            rec.rejected += 1
            continue
        rep.sched.submit(Seq(i, ts, prompts[i], outputs[i]))
        if rep.wake is not None and not rep.wake.triggered:
            rep.wake.succeed()
        elif rep.in_stretch:          # it joins after the step in progress
            rep.in_stretch = False
            rep.proc.interrupt()


def _replica(env, rep: Replica, cost: IterationCost, rec: Records):
    """plan -> timeout(cost) -> commit.

    Decode-only steps before the next finish or KV overflow change nothing anyone
    can see (queue lengths, router counts), so they run as one timeout of their
    summed times. An arrival at this replica interrupts the stretch, which then
    ends with the step in progress, exactly where stepping one by one would have
    let the new request in.
    """
    sched = rep.sched
    first_sched, first_token, finish = rec.first_sched_s, rec.first_token_s, rec.finish_s
    decode_run = getattr(cost, "decode_run", None)
    while True:
        it = sched.plan(env.now)
        if it is None:
            rep.wake = env.event()
            yield rep.wake
            rep.wake = None
            continue
        dt = first = cost(it)
        steps, limit = 1, 1
        if not it.chunks and decode_run is not None:
            limit = sched.decode_run_limit()
            if limit > 1:
                steps, dt = decode_run(it.n_decode, it.decode_ctx, first, limit, float("inf"))
        if steps > 1:
            start = env.now
            rep.in_stretch = True
            try:
                yield env.timeout(dt)
                rep.in_stretch = False
            except simpy.Interrupt:
                steps, dt = decode_run(it.n_decode, it.decode_ctx, first, limit, env.now - start)
                yield env.timeout(start + dt - env.now)
        else:
            yield env.timeout(dt)
        rec.iterations += steps
        rec.busy_s += dt
        rec.batch_seqs += (it.n_decode + len(it.chunks)) * steps
        rec.batch_tokens += it.tokens * steps
        rec.events += steps
        for f in sched.commit(it, env.now, steps):
            finish[f.rid] = f.finish_s
        if sched.first_tokens:
            for rid, t_sched, t_first in sched.first_tokens:
                first_sched[rid] = t_sched
                first_token[rid] = t_first
            sched.first_tokens.clear()


def _probe(env, reps: list[Replica], queue: dict, interval_s: float):
    while True:
        queue["t_s"].append(env.now)
        queue["waiting"].append(sum(len(r.sched.waiting) for r in reps))
        queue["running"].append(sum(len(r.sched.running) for r in reps))
        yield env.timeout(interval_s)
