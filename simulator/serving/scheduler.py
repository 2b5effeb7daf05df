"""Continuous-batching scheduler of one replica (Orca, Yu et al. OSDI 2022; vLLM, Kwon et al. SOSP 2023).

Each iteration runs every decoding sequence for one token and fills the rest
of the token budget (`max_batch_tokens`) with prefill work: whole prompts, or
chunks of them with chunked prefill (Sarathi, Agrawal et al. 2023). At most
`max_sequences` sequences run at once. The KV cache holds `kv_capacity_tokens`
tokens; a prompt is admitted only when its KV fits, and when decode growth
would overflow the cache the most recently admitted sequence is preempted
(recompute mode: its KV is dropped and it re-queues at the front, to prefill
prompt + generated tokens again), as vLLM does.

Work per iteration is O(1) plus O(sequences that start, finish or get
preempted): decoding sequences are not visited each step; each one's finish
step sits in a heap and the sum of their contexts is kept incrementally.
"""
from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field

WAITING, PREFILLING, DECODING = 0, 1, 2


@dataclass(slots=True, eq=False)
class Seq:
    rid: int                  # request index
    arrival_s: float
    orig_prompt: int
    total_output: int
    prompt: int = 0           # tokens to prefill now (orig_prompt + generated after a preemption)
    prefilled: int = 0
    generated: int = 0        # output tokens produced so far (at the last state change)
    state: int = WAITING
    admit_no: int = -1
    epoch: int = 0
    ctx0: int = 0             # KV tokens when decoding started
    d0: int = 0               # replica decode step when decoding started
    first_sched_s: float = -1.0
    first_token_s: float = -1.0


@dataclass(slots=True)
class Iteration:
    """What one forward pass of the replica contains; the cost model turns it into seconds."""

    tokens: int = 0                 # tokens through the linear layers (prefill chunks + decodes)
    n_logits: int = 0               # sequences that emit a token (LM head rows)
    n_decode: int = 0
    decode_ctx: int = 0             # sum over decoding sequences of their attended context
    prefill_pairs: float = 0.0      # causal (query, key) pairs of the prefill chunks
    prefill_kv_tokens: int = 0      # keys/values the prefill chunks read
    chunks: list = field(default_factory=list)   # (Seq, chunk tokens)


@dataclass(slots=True)
class Finished:
    rid: int
    first_sched_s: float
    first_token_s: float
    finish_s: float
    output_tokens: int


class ReplicaScheduler:
    """State of one replica's batch; `plan` the next iteration, `commit` it when it ends."""

    def __init__(self, max_batch_tokens: int, max_sequences: int, kv_capacity_tokens: int,
                 chunked_prefill: bool = True):
        self.max_batch_tokens = int(max_batch_tokens)
        self.max_running = int(min(max_sequences, max_batch_tokens))
        self.kv_capacity = int(kv_capacity_tokens)
        self.chunked = bool(chunked_prefill)
        self.waiting: deque[Seq] = deque()
        self.prefilling: list[Seq] = []
        self.running: OrderedDict[int, Seq] = OrderedDict()   # admit_no -> Seq, admission order
        self._heap: list[tuple[int, int, int, Seq]] = []      # (finish step, admit_no, epoch, seq)
        self.n_decoding = 0
        self.sum_ctx = 0          # KV tokens held by decoding sequences
        self.kv_reserved = 0      # KV tokens reserved by prefilling sequences (whole prompt)
        self.dstep = 0
        self._admits = 0
        self.preemptions = 0
        self.first_tokens: list[tuple[int, float, float]] = []   # (rid, first scheduled, first token); drained by the engine

    # -- queue -----------------------------------------------------------------------------
    def fits_ever(self, prompt: int, output: int) -> bool:
        """A request whose whole context exceeds the KV cache can never complete."""
        return prompt + output <= self.kv_capacity

    def submit(self, seq: Seq) -> None:
        seq.prompt = seq.orig_prompt
        self.waiting.append(seq)

    @property
    def outstanding(self) -> int:
        return len(self.waiting) + len(self.running)

    @property
    def kv_used(self) -> int:
        return self.kv_reserved + self.sum_ctx

    # -- planning --------------------------------------------------------------------------
    def plan(self, now_s: float) -> Iteration | None:
        """The next iteration's contents, or None when there is nothing to run."""
        while self.running and self.kv_used + self.n_decoding > self.kv_capacity:
            self._preempt(next(reversed(self.running.values())))
        if self.chunked:
            it = self._plan_mixed(now_s)
        else:
            it = self._plan_prefill_first(now_s)
        return it if it.tokens > 0 else None

    def _plan_mixed(self, now_s: float) -> Iteration:
        it = self._decode_part()
        budget = self.max_batch_tokens - it.n_decode
        for seq in self.prefilling:
            if budget <= 0:
                break
            budget -= self._add_chunk(it, seq, min(seq.prompt - seq.prefilled, budget))
        while budget > 0 and self._can_admit():
            seq = self._admit(now_s)
            budget -= self._add_chunk(it, seq, min(seq.prompt, budget))
        return it

    def _plan_prefill_first(self, now_s: float) -> Iteration:
        """Without chunking: an iteration of whole prompts when any can start, else decodes."""
        it = Iteration()
        budget = self.max_batch_tokens
        while self._can_admit() and (not it.chunks or self.waiting[0].prompt <= budget):
            seq = self._admit(now_s)
            budget -= self._add_chunk(it, seq, seq.prompt)
        return it if it.chunks else self._decode_part()

    def _decode_part(self) -> Iteration:
        n = self.n_decoding
        return Iteration(tokens=n, n_logits=n, n_decode=n, decode_ctx=self.sum_ctx + n)

    def _can_admit(self) -> bool:
        if not self.waiting or len(self.running) >= self.max_running:
            return False
        return self.kv_used + self.n_decoding + self.waiting[0].prompt <= self.kv_capacity

    def _admit(self, now_s: float) -> Seq:
        seq = self.waiting.popleft()
        seq.state, seq.prefilled = PREFILLING, 0
        seq.admit_no = self._admits
        self._admits += 1
        if seq.first_sched_s < 0:
            seq.first_sched_s = now_s
        self.running[seq.admit_no] = seq
        self.prefilling.append(seq)
        self.kv_reserved += seq.prompt
        return seq

    @staticmethod
    def _add_chunk(it: Iteration, seq: Seq, chunk: int) -> int:
        o = seq.prefilled
        it.chunks.append((seq, chunk))
        it.tokens += chunk
        it.prefill_pairs += chunk * o + chunk * (chunk + 1) / 2.0
        it.prefill_kv_tokens += o + chunk
        if o + chunk == seq.prompt:
            it.n_logits += 1
        return chunk

    # -- committing ------------------------------------------------------------------------
    def decode_run_limit(self) -> int:
        """Decode-only steps that can run before any state change: the next finish or KV overflow.

        Valid right after `plan` returned an iteration without prefill chunks (then
        nothing waiting can be admitted, and decode growth only makes that harder).
        """
        heap = self._heap
        while heap and (heap[0][2] != heap[0][3].epoch or heap[0][3].state != DECODING):
            heapq.heappop(heap)
        to_finish = heap[0][0] - self.dstep if heap else 1
        n = self.n_decoding
        to_full = (self.kv_capacity - self.kv_used) // n if n else 1
        return max(1, min(to_finish, to_full))

    def commit(self, it: Iteration, end_s: float, steps: int = 1) -> list[Finished]:
        """Apply a finished iteration: advance decodes, finish prefills, return completed requests.

        `steps` > 1 commits that many decode-only iterations at once (see `decode_run_limit`).
        """
        done: list[Finished] = []
        if it.n_decode:
            self.dstep += steps
            self.sum_ctx += self.n_decoding * steps
            heap = self._heap
            while heap and heap[0][0] <= self.dstep:
                _, _, epoch, seq = heapq.heappop(heap)
                if seq.epoch == epoch and seq.state == DECODING:
                    self.sum_ctx -= seq.ctx0 + (self.dstep - seq.d0)
                    self.n_decoding -= 1
                    done.append(self._finish(seq, end_s, seq.total_output))
        for seq, chunk in it.chunks:
            seq.prefilled += chunk
            if seq.prefilled < seq.prompt:
                continue
            self.prefilling.remove(seq)
            self.kv_reserved -= seq.prompt
            seq.generated += 1
            if seq.first_token_s < 0:
                seq.first_token_s = end_s
                self.first_tokens.append((seq.rid, seq.first_sched_s, end_s))
            if seq.generated >= seq.total_output:
                done.append(self._finish(seq, end_s, seq.total_output))
                continue
            seq.state, seq.ctx0, seq.d0 = DECODING, seq.prompt, self.dstep
            self.n_decoding += 1
            self.sum_ctx += seq.prompt
            heapq.heappush(self._heap, (self.dstep + seq.total_output - seq.generated,
                                        seq.admit_no, seq.epoch, seq))
        return done

    def _finish(self, seq: Seq, end_s: float, output_tokens: int) -> Finished:
        seq.state = -1
        del self.running[seq.admit_no]
        return Finished(seq.rid, seq.first_sched_s, seq.first_token_s, end_s, output_tokens)

    def _preempt(self, seq: Seq) -> None:
        """Recompute-mode preemption: drop the KV, re-queue at the front."""
        del self.running[seq.admit_no]
        if seq.state == DECODING:
            steps = self.dstep - seq.d0
            self.sum_ctx -= seq.ctx0 + steps
            self.n_decoding -= 1
            seq.generated += steps
        else:
            self.prefilling.remove(seq)
            self.kv_reserved -= seq.prompt
        seq.epoch += 1
        seq.state, seq.prefilled = WAITING, 0
        seq.prompt = seq.orig_prompt + seq.generated
        self.waiting.appendleft(seq)
        self.preemptions += 1
