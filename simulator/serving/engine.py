"""SimPy processes of the serving simulation: arrivals, router, replicas, queue probe.

One process replays the arrivals and routes each request; one process per
replica loops plan -> timeout(iteration cost) -> commit; a probe samples queue
lengths. The simulation stops at `duration_s`; requests still queued or running
are counted as in flight (arrived = completed + in flight + rejected).

A replica of `stages` > 1 pipeline stages runs as many virtual engines, each
with its own scheduler (and its share of the KV cache), as vLLM does for
pipeline parallelism (one scheduler per virtual engine, each with
num_gpu_blocks // pipeline_parallel_size: vllm/core/scheduler.py; a new request
goes to the one with the fewest unfinished): while one engine's iteration is on stage 2 the next one's
is on stage 1. An iteration of cost T holds each stage for T / stages in turn,
first come first served (a reservation table per replica: `Pipeline`), so one
request sees the whole T and a saturated replica completes up to `stages`
iterations per T; unequal batches leave bubbles, as they do in the real engine.
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


class Pipeline:
    """When each pipeline stage of a replica is next free (a first-come reservation table)."""

    def __init__(self, stages: int):
        self.stages = stages
        self.free_s = [0.0] * stages

    def reserve(self, start_s: float, duration_s: float) -> float:
        """Pass an iteration of `duration_s` through the stages in turn (duration_s / stages
        each, waiting where a stage is still busy); returns when it leaves the last one."""
        per, t = duration_s / self.stages, start_s
        for i, free in enumerate(self.free_s):
            t = (t if t > free else free) + per
            self.free_s[i] = t
        return t


@dataclass
class Engine:
    """One scheduler with its process: a replica, or one virtual engine of a pipelined replica."""

    sched: ReplicaScheduler
    pipeline: Pipeline | None = None
    wake: simpy.Event | None = None
    proc: simpy.Process | None = None
    in_stretch: bool = False          # running several decode-only steps as one timeout

    @property
    def outstanding(self) -> int:
        return self.sched.outstanding


@dataclass
class Replica:
    engines: list[Engine]

    @property
    def outstanding(self) -> int:
        return sum(e.sched.outstanding for e in self.engines)

    def engine_for(self) -> Engine:
        """The virtual engine with the fewest unfinished requests (vLLM's choice); ties: the first."""
        return min(self.engines, key=lambda e: e.sched.outstanding)


def run(workload: Workload, make_scheduler: Callable[[], ReplicaScheduler], replicas: int,
        cost: IterationCost, router: Callable, duration_s: float, stages: int = 1):
    """Simulate `duration_s` seconds; returns (Records, queue samples, schedulers)."""
    env = simpy.Environment()
    reps = []
    for _ in range(replicas):
        pipe = Pipeline(stages) if stages > 1 else None
        reps.append(Replica([Engine(make_scheduler(), pipe) for _ in range(stages)]))
    rec = Records.empty(workload)
    queue = {"t_s": [], "waiting": [], "running": []}
    env.process(_arrivals(env, workload, reps, router, rec))
    engines = [e for r in reps for e in r.engines]
    for eng in engines:
        eng.proc = env.process(_replica(env, eng, cost, rec))
    env.process(_probe(env, engines, queue, duration_s / QUEUE_SAMPLES))
    env.run(until=duration_s)
    return rec, queue, [e.sched for e in engines]


def _arrivals(env, w: Workload, reps: list[Replica], router, rec: Records):
    t, prompts, outputs = w.t_s.tolist(), w.prompt_tokens.tolist(), w.output_tokens.tolist()
    for i, ts in enumerate(t):
        if ts > env.now:
            yield env.timeout(ts - env.now)
        rec.events += 1
        rep = reps[router(reps)].engine_for()
        if not rep.sched.fits_ever(prompts[i], outputs[i]):
            rec.rejected += 1
            continue
        rep.sched.submit(Seq(i, ts, prompts[i], outputs[i]))
        if rep.wake is not None and not rep.wake.triggered:
            rep.wake.succeed()
        elif rep.in_stretch:          # it joins after the step in progress
            rep.in_stretch = False
            rep.proc.interrupt()


def _replica(env, rep: Engine, cost: IterationCost, rec: Records):
    """plan -> timeout(cost) -> commit.

    Decode-only steps before the next finish or KV overflow change nothing anyone
    can see (queue lengths, router counts), so they run as one timeout of their
    summed times. An arrival at this replica interrupts the stretch, which then
    ends with the step in progress, exactly where stepping one by one would have
    let the new request in. A virtual engine of a pipelined replica steps one
    iteration at a time through the stage reservations (its steps interleave with
    the other engines'); its busy time is the stage time, dt / stages.
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
        dt = cost(it)
        steps = 1
        if rep.pipeline is not None:
            yield env.timeout(rep.pipeline.reserve(env.now, dt) - env.now)
            dt /= rep.pipeline.stages
        else:
            steps, dt = yield from _step_or_stretch(env, rep, it, dt, decode_run)
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


def _step_or_stretch(env, rep: Engine, it: Iteration, first: float, decode_run):
    """Run one iteration, or a stretch of decode-only steps as one timeout; returns (steps, seconds)."""
    steps, dt, limit = 1, first, 1
    if not it.chunks and decode_run is not None:
        limit = rep.sched.decode_run_limit()
        if limit > 1:
            steps, dt = decode_run(it.n_decode, it.decode_ctx, first, limit, float("inf"))
    if steps == 1:
        yield env.timeout(dt)
        return steps, dt
    start = env.now
    rep.in_stretch = True
    try:
        yield env.timeout(dt)
        rep.in_stretch = False
    except simpy.Interrupt:
        steps, dt = decode_run(it.n_decode, it.decode_ctx, first, limit, env.now - start)
        yield env.timeout(start + dt - env.now)
    return steps, dt


def _probe(env, reps: list[Engine], queue: dict, interval_s: float):
    while True:
        queue["t_s"].append(env.now)
        queue["waiting"].append(sum(len(r.sched.waiting) for r in reps))
        queue["running"].append(sum(len(r.sched.running) for r in reps))
        yield env.timeout(interval_s)
