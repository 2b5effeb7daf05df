"""Fast iteration cost for the serving engine: tables precomputed from the step model.

An hour of serving runs ~10^5-10^6 iterations, too many to run the roofline
per iteration. The linear layers (+ TP communication) and the LM head are
tabulated exactly at every integer token / row count up to the scheduler's
limits; attention, a function of the total attended context (decode) or of
the (query, key) pairs and bytes (prefill), is tabulated on a geometric grid
(2^(1/16) spacing) and interpolated linearly between points, which is within
a fraction of a percent of the direct evaluation because the efficiency curves
are smooth in log(size). Counts above the tables fall back to direct evaluation.
"""
from __future__ import annotations

from bisect import bisect_left

import numpy as np

from simulator.cost.compute import op_time_s
from simulator.serving.scheduler import Iteration
from simulator.serving.stepcost import StepModel

GRID_STEPS_PER_OCTAVE = 16


class Interp:
    """Piecewise-linear f(x) on a geometric grid from 1 to `upper` (f(0) = 0)."""

    def __init__(self, fn, upper: float):
        n = int(np.ceil(np.log2(max(upper, 2.0)) * GRID_STEPS_PER_OCTAVE)) + 1
        xs = np.unique(np.concatenate([[0.0], np.exp2(np.arange(n) / GRID_STEPS_PER_OCTAVE)]))
        self.xs = xs.tolist()
        self.ys = np.asarray(fn(xs), dtype=float).tolist()
        self.fn = fn

    def __call__(self, x: float) -> float:
        xs = self.xs
        i = bisect_left(xs, x)
        if i >= len(xs):
            return float(self.fn(x))
        if xs[i] == x:
            return self.ys[i]
        x0, x1, y0, y1 = xs[i - 1], xs[i], self.ys[i - 1], self.ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class TableCost:
    """Callable Iteration -> seconds for one replica (see module docstring)."""

    def __init__(self, step: StepModel, max_tokens: int, max_rows: int, max_context: int,
                 bidirectional: bool = False):
        self.step = step
        t = np.arange(max_tokens + 1, dtype=float)
        self.linear = (step.linear_s(t) + step.comm_s(t)).tolist()
        self.head = step.head_s(np.arange(max_rows + 1, dtype=float)).tolist()
        self.pair_scale = 2.0 if bidirectional else 1.0   # full square instead of the causal half
        p = step.profile
        flops_pp, kv_pt = step.attn_flops_per_pair, step.kv_bytes_per_token_per_layer
        q_bytes_pt = 2.0 * step.heads_local * step.arch.head_dim * step.act_bytes
        self.kv_pt, self.q_pt = kv_pt, q_bytes_pt
        self.decode = Interp(lambda c: step.decode_attention_s(c), max_context + max_rows + 1)
        # prefill attention: roofline of compute (pairs) and memory (bytes) parts, launch added once
        upper_pairs = float(max_tokens) * (max_context + max_tokens)
        self.pre_c = Interp(lambda x: op_time_s(p, "attention_score", x * flops_pp, 0.0, step.act_dtype,
                                                launches=0), upper_pairs)
        upper_bytes = (max_context + max_tokens) * kv_pt + max_tokens * q_bytes_pt
        self.pre_m = Interp(lambda b: op_time_s(p, "attention_score", 0.0, b, step.act_dtype, launches=0),
                            upper_bytes)
        self.layers = step.time_layers
        # the launch term exactly as the roofline adds it (0 where the curves embed it)
        self.launch_s = (op_time_s(p, "attention_score", 1.0, 1.0, step.act_dtype, launches=1)
                         - op_time_s(p, "attention_score", 1.0, 1.0, step.act_dtype, launches=0))

    def __call__(self, it: Iteration) -> float:
        T = it.tokens
        lin = self.linear
        t = lin[T] if T < len(lin) else float(self.step.linear_s(T) + self.step.comm_s(T))
        rows = it.n_logits
        t += self.head[rows] if rows < len(self.head) else float(self.step.head_s(rows))
        if it.n_decode:
            t += self.decode(it.decode_ctx)
        if it.chunks:
            q = T - it.n_decode
            tc = self.pre_c(it.prefill_pairs * self.pair_scale)
            tm = self.pre_m(it.prefill_kv_tokens * self.kv_pt + q * self.q_pt)
            t += self.layers * ((tc if tc > tm else tm) + self.launch_s)
        return t

    def decode_only(self, n: int, ctx: int) -> float:
        """Cost of an iteration of `n` decodes attending `ctx` tokens in total (no prefill)."""
        lin, head = self.linear, self.head
        t = lin[n] if n < len(lin) else float(self.step.linear_s(n) + self.step.comm_s(n))
        t += head[n] if n < len(head) else float(self.step.head_s(n))
        return t + self.decode(ctx)

    def decode_run(self, n: int, ctx: int, dt: float, limit: int, horizon_s: float) -> tuple[int, float]:
        """Extend a decode-only iteration (cost `dt`, attended context `ctx`) by further steps,
        each attending `n` more tokens, while fewer than `limit` steps ran and the total
        stays under `horizon_s`. Returns (steps, total seconds).

        Within one segment of the attention grid a step's cost is linear in its context,
        so the steps of a segment are summed in closed form (an arithmetic series); only
        the segment where the horizon falls is walked step by step.
        """
        lin, head = self.linear, self.head
        xs, ys = self.decode.xs, self.decode.ys
        if n >= len(lin) or n >= len(head) or ctx + n * limit > xs[-1]:
            return self._decode_run_steps(n, ctx, dt, limit, horizon_s)
        base = lin[n] + head[n]
        steps, c = 1, ctx
        i = bisect_left(xs, c + n)
        while steps < limit and dt < horizon_s:
            while xs[i] < c + n:
                i += 1
            x0, x1, y0 = xs[i - 1], xs[i], ys[i - 1]
            slope = (ys[i] - y0) / (x1 - x0)
            m = min(int((x1 - c) // n), limit - steps)
            a = base + y0 - slope * x0            # cost(x) = a + slope * x inside the segment
            seg = m * a + slope * (m * c + n * m * (m + 1) / 2.0)
            if dt + seg < horizon_s:
                dt, steps, c = dt + seg, steps + m, c + m * n
                continue
            for _ in range(m):                    # the horizon falls in this segment
                c += n
                dt += a + slope * c
                steps += 1
                if dt >= horizon_s:
                    break
            break
        return steps, dt

    def _decode_run_steps(self, n, ctx, dt, limit, horizon_s):
        steps = 1
        while steps < limit and dt < horizon_s:
            ctx += n
            dt += self.decode_only(n, ctx)
            steps += 1
        return steps, dt

    def direct(self, it: Iteration) -> float:
        """The same cost without tables (for tests of the tables' accuracy)."""
        s = self.step
        t = float(s.linear_s(it.tokens) + s.comm_s(it.tokens) + s.head_s(it.n_logits))
        if it.n_decode:
            t += float(s.decode_attention_s(it.decode_ctx))
        if it.chunks:
            q = it.tokens - it.n_decode
            t += float(s.prefill_attention_s(it.prefill_pairs * self.pair_scale, it.prefill_kv_tokens, q))
        return t
