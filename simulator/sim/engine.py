"""The SimPy engine: one training step of a pipeline, played out event by event.

Each pipeline rank is a SimPy process that runs its schedule's task order on
its compute stream, waiting for the activation (forward) or gradient
(backward) of each micro-batch to arrive from its neighbour. Transfers queue
on the sending device's link (one transfer at a time per link, FIFO), and
data-parallel gradient buckets queue on the device's communication stream;
when a device's inter-node traffic (point-to-point and DP) shares the NIC the
two contend (point-to-point first, the bulk gradient traffic yielding the
bandwidth it takes). Overlap of gradient reduction with the last backward pass, the
pipeline bubble and link contention are therefore outcomes of the
simulation, not formulas. Identical tp/dp ranks are simulated once (they run
in lockstep); per-chunk durations come from `parallel.costing.stage_costs`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from simulator.parallel.costing import StageCosts
from simulator.parallel.pipeline import device_order


@dataclass
class DeviceRun:
    device: int
    compute_s: float = 0.0         # pure compute inside tasks
    inline_comm_s: float = 0.0     # tp/sp/ep collectives inside tasks (critical path)
    pipe_end_s: float = 0.0        # end of the device's last backward
    reduce_end_s: float = 0.0      # gradient reduction finished
    step_end_s: float = 0.0        # after optimizer (and ZeRO parameter all-gather)
    optimizer_s: float = 0.0
    post_s: float = 0.0
    blocked_s: float = 0.0         # compute stream waiting on its own point-to-point sends


@dataclass
class PipelineRun:
    makespan_s: float
    devices: list[DeviceRun]
    events: int
    trace: list[tuple] = field(default_factory=list)   # (device, stream, name, start_s, dur_s)


class _Link:
    """A serial link: transfers start when both the data and the link are free (FIFO)."""

    __slots__ = ("free_at",)

    def __init__(self):
        self.free_at = 0.0


def simulate_pipeline(costs: StageCosts, *, record: bool = False, nic_shared: bool = True) -> PipelineRun:
    """Play one step of `costs` on a SimPy environment and return the per-device timeline."""
    env = simpy.Environment()
    p, v, m = costs.pp, costs.virtual_stages, costs.num_microbatches
    n_virtual = p * v
    chunks = {(c.device, c.index // p): c for c in costs.chunks}
    arrivals: dict[tuple, simpy.Event] = {}
    nics = [_Link() for _ in range(p)]
    dp_streams = [_Link() for _ in range(p)]
    state = {"events": 0}
    trace: list[tuple] = []
    runs = [DeviceRun(d) for d in range(p)]

    def arrival(key) -> simpy.Event:
        ev = arrivals.get(key)
        if ev is None:
            ev = arrivals[key] = env.event()
        return ev

    def send(device: int, key, name: str) -> float:
        """Start a transfer to the neighbour; returns when it completes (sender may block on it)."""
        target = arrival(key)
        if costs.p2p_s <= 0:
            target.succeed()
            return env.now
        link = nics[device]
        start = max(env.now, link.free_at)
        link.free_at = start + costs.p2p_s
        dp = dp_streams[device]
        if nic_shared and dp.free_at > start:
            # the NIC is shared: latency-critical p2p goes first and delays the bulk
            # gradient traffic by its own duration (bandwidth taken, not FIFO behind it)
            dp.free_at += costs.p2p_s
        if record:
            trace.append((device, "p2p", name, start, costs.p2p_s))
        done = env.timeout(link.free_at - env.now)
        done.callbacks.append(lambda _ev: target.succeed())
        state["events"] += 2
        return link.free_at

    def reduce_buckets(d: int, run: DeviceRun, bucket_s, starts):
        """Queue gradient buckets on the DP stream (and the shared NIC) as they become ready."""
        stream = dp_streams[d]
        for ready, dur in zip(starts, bucket_s):
            start = max(ready, stream.free_at)
            stream.free_at = start + dur
            if record:
                trace.append((d, "dp", "grad_reduce", start, dur))
        return stream.free_at

    def device(d: int):
        run = runs[d]
        order = device_order(costs.schedule, p, d, m, v)
        dev = costs.devices[d]
        last_index = len(order) - 1
        for i, (kind, mb, c) in enumerate(order):
            vs = c * p + d
            chunk = chunks[(d, c)]
            if kind == "F":
                if vs > 0:
                    yield arrival(("F", mb, vs))
                dur, comp = chunk.fwd_s, chunk.fwd_compute_s
            else:
                if vs < n_virtual - 1:
                    yield arrival(("B", mb, vs))
                dur, comp = chunk.bwd_s, chunk.bwd_compute_s
            start = env.now
            overlap = costs.overlap_grad_reduce and i == last_index and dev.bucket_s
            if overlap:   # buckets become ready in order as the last backward proceeds
                n = len(dev.bucket_s)
                starts = [start + dur * (k + 1) / n for k in range(n)]
                yield env.timeout(dur)
                run.reduce_end_s = reduce_buckets(d, run, dev.bucket_s, starts)
            else:
                yield env.timeout(dur)
            state["events"] += 2
            run.compute_s += comp
            run.inline_comm_s += dur - comp
            if record:
                trace.append((d, "compute", f"{kind}{mb}.c{c}", start, dur,
                              {"micro_batch": mb, "chunk": c, "virtual_stage": vs, "compute_s": comp,
                               "tensor_parallel_comm_s": dur - comp}))
            sent = None
            if kind == "F" and vs < n_virtual - 1:
                sent = send(d, ("F", mb, vs + 1), f"act mb{mb}")
            elif kind == "B" and vs > 0:
                sent = send(d, ("B", mb, vs - 1), f"grad mb{mb}")
            if sent is not None and costs.p2p_blocking and sent > env.now:
                # Megatron-LM (2021) p2p: batch_isend_irecv + wait + cuda.synchronize,
                # so the compute stream waits for its transfer to finish
                run.blocked_s += sent - env.now
                yield env.timeout(sent - env.now)
        run.pipe_end_s = env.now
        if not (costs.overlap_grad_reduce and dev.bucket_s):
            run.reduce_end_s = reduce_buckets(d, run, (dev.reduce_total_s,), (env.now,)) \
                if dev.reduce_total_s > 0 else env.now
        run.reduce_end_s = max(run.reduce_end_s, env.now)
        if run.reduce_end_s > env.now:
            yield env.timeout(run.reduce_end_s - env.now)
        run.optimizer_s, run.post_s = dev.optimizer_s, dev.post_optimizer_s
        if record and dev.optimizer_s:
            trace.append((d, "compute", "optimizer", env.now, dev.optimizer_s))
        yield env.timeout(dev.optimizer_s)
        if dev.post_optimizer_s:
            if record:
                trace.append((d, "dp", "param_allgather", env.now, dev.post_optimizer_s))
            yield env.timeout(dev.post_optimizer_s)
        state["events"] += 3
        run.step_end_s = env.now

    for d in range(p):
        env.process(device(d))
    env.run()
    makespan = max(r.step_end_s for r in runs)
    for d, r in enumerate(runs):
        if r.step_end_s == 0.0 and costs.chunks:
            raise RuntimeError(f"pipeline device {d} never finished (schedule deadlock)")
    return PipelineRun(makespan, runs, state["events"], trace)


def breakdown(run: PipelineRun) -> dict[str, float]:
    """Split the step of the device that finishes last into compute, exposed comm, bubble, optimizer.

    The four parts add up to the step time exactly.
    """
    r = max(run.devices, key=lambda x: (x.step_end_s, -x.device))
    busy = r.compute_s + r.inline_comm_s
    exposed_dp = max(0.0, r.reduce_end_s - r.pipe_end_s)
    return {
        "compute_s": r.compute_s,
        "exposed_comm_s": r.inline_comm_s + r.blocked_s + exposed_dp + r.post_s,
        "pipeline_bubble_s": max(0.0, r.pipe_end_s - busy - r.blocked_s),
        "optimizer_s": r.optimizer_s,
    }
