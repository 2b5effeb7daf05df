"""Inference of one batch: prefill (the prompt, compute-bound) then decode (one token per
sequence per step, reading every weight and the whole KV cache; memory-bound at small batch).

    prefill_s          = t(B*P tokens through every op, B*P(P+1)/2 causal attention pairs)
    decode step k      = t(B tokens, attention over B*(P+k) cached tokens)
    latency_s          = prefill_s + sum of the O-1 decode steps (the first token comes from prefill)
    KV bytes per token = 2 * layers * kv_heads * head_dim * bytes(kv_dtype)   (K and V)

(Pope et al. 2022, "Efficiently Scaling Transformer Inference"; Kwon et al.
2023, vLLM.) Encoder-only models (BERT) run one forward pass, no decode. Op
times come from `serving.stepcost` (the model's graph through the shared
roofline); memory from weights, KV cache and the largest transient activation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator import __version__
from simulator.errors import InfeasibleError, InputError
from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.schema.graph import TransformerArch
from simulator.schema.hardware import HardwareProfile
from simulator.schema.inference import (InferenceBreakdown, InferenceMemory, InferenceProvenance,
                                        InferenceResult)
from simulator.schema.scenario import Scenario
from simulator.serving.stepcost import StepModel, build_step_model
from simulator.units import format_bytes

DEFAULT_OUTPUT_TOKENS = 128
LOGIT_BYTES = 4.0      # logits are kept in fp32 for sampling


@dataclass(frozen=True)
class Replica:
    """One model replica (tp*pp devices) as both the batch costing and the serving engine see it."""

    scenario: Scenario
    profile: HardwareProfile
    arch: TransformerArch
    step: StepModel
    model_name: str

    @property
    def encoder_only(self) -> bool:
        return self.arch.encoder_only

    @property
    def capacity_bytes(self) -> float:
        return self.profile.memory.capacity_bytes

    def activation_bytes(self, tokens: float, rows: float) -> float:
        """Largest transient of a forward of `tokens` tokens on one rank, plus the fp32 logits."""
        s = self.step
        widest = max((r.act_bytes_per_token for r in s.layer_ops), default=0.0)
        stream = 2.0 * self.arch.hidden_size * s.act_bytes      # residual stream beside it
        vocab = self.arch.vocab_size / s.tp if not self.encoder_only else (self.arch.num_labels or 1)
        return tokens * (widest + stream) + rows * vocab * LOGIT_BYTES

    @property
    def kv_per_token_device(self) -> float:
        """KV-cache bytes per token on one device (0 for encoders: nothing is cached)."""
        return 0.0 if self.encoder_only else self.step.kv_bytes_per_token_per_device

    def kv_capacity_tokens(self, max_batch_tokens: int, max_rows: int) -> int:
        """KV tokens that fit beside the weights and the workspace of the largest iteration."""
        per = self.kv_per_token_device
        free = self.capacity_bytes - self.step.weight_bytes_per_device - self.activation_bytes(max_batch_tokens, max_rows)
        if free <= 0:
            return 0
        return int(free // per) if per > 0 else 10**12

    def memory_bytes(self, batch: int, prompt: int, output: int) -> tuple[float, float, float]:
        """(weights, kv cache, activations) bytes per device for a batch of B sequences."""
        kv = batch * (prompt + output) * self.kv_per_token_device
        return self.step.weight_bytes_per_device, kv, self.activation_bytes(batch * prompt, batch)

    def max_batch(self, prompt: int, output: int) -> int:
        """Largest batch whose weights + KV + activations fit (0: not even one sequence)."""
        def fits(b: int) -> bool:
            return sum(self.memory_bytes(b, prompt, output)) <= self.capacity_bytes
        if not fits(1):
            return 0
        lo, hi = 1, 2
        while fits(hi) and hi < 10**7:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo


def build_replica(scenario: Scenario, profiles_dir: str | Path | None = None,
                  tp: int | None = None, pp: int | None = None, hardware: str | None = None) -> Replica:
    """Resolve the model, hardware and per-replica layout of an inference scenario."""
    wl = scenario.workload
    profile = load_hardware(hardware or scenario.cluster.hardware, profiles_dir)
    try:
        arch = load_arch(wl.model, wl.model_options or None)
    except InputError as exc:
        from simulator.graph.build import scenario_model_field
        raise InputError(exc.message, source=exc.source, field=scenario_model_field(exc),
                         expected=exc.expected) from None
    if arch is None:
        raise InputError("inference and serving need a transformer model (decoder or encoder); "
                         "CNN and ONNX graphs have no prefill/decode", field="workload.model")
    tp = tp or scenario.parallelism.tp
    pp = pp or scenario.parallelism.pp
    check_layout(arch, tp, pp)
    step = build_step_model(arch, profile, tp=tp, pp=pp, dtype=wl.dtype, weight_dtype=wl.weight_dtype,
                            kv_dtype=wl.kv_dtype,
                            devices_per_node=scenario.cluster.devices_per_node or profile.devices_per_node)
    name = wl.model if isinstance(wl.model, str) else str(wl.model.get("_name_or_path", "inline model"))
    return Replica(scenario, profile, arch, step, name)


def check_layout(arch: TransformerArch, tp: int, pp: int) -> None:
    if arch.num_heads % tp:
        raise InputError(f"tp = {tp} does not divide the {arch.num_heads} attention heads",
                         field="parallelism.tp", expected=f"a divisor of {arch.num_heads}")
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        raise InputError(f"tp = {tp} and the {arch.num_kv_heads} KV heads do not divide one another",
                         field="parallelism.tp", expected="tp dividing the KV heads or a multiple of them")
    if pp > arch.num_layers:
        raise InputError(f"pp = {pp} exceeds the {arch.num_layers} layers", field="parallelism.pp",
                         expected=f"at most {arch.num_layers}")


def lengths_of(scenario: Scenario, encoder_only: bool) -> tuple[int, int, int]:
    """(batch, prompt tokens, output tokens) of an inference workload, with defaults."""
    wl = scenario.workload
    prompt = wl.prompt_tokens or wl.seq_len
    output = 0 if encoder_only else (wl.output_tokens or DEFAULT_OUTPUT_TOKENS)
    return wl.batch or wl.micro_batch, prompt, output


def not_fitting_error(rep: Replica, prompt: int, output: int, where: str = "") -> InfeasibleError:
    w, kv, act = rep.memory_bytes(1, prompt, output)
    s = rep.step
    return InfeasibleError(
        f"{rep.model_name} does not fit on {rep.profile.name}{where} even at batch 1: weights "
        f"{format_bytes(w)} + KV cache {format_bytes(kv)} + activations {format_bytes(act)} per device "
        f"> {format_bytes(rep.capacity_bytes)} usable with tp={s.tp}, pp={s.pp}",
        field="parallelism", expected="a larger tp/pp, a smaller weight_dtype (fp8, int8, int4) or a larger device")


def prefill_s(rep: Replica, batch: int, prompt: int) -> tuple[float, float]:
    """(total, communication) seconds of the prefill of `batch` prompts of `prompt` tokens."""
    s = rep.step
    tokens = batch * prompt
    pairs = batch * prompt * prompt if rep.encoder_only else batch * prompt * (prompt + 1) / 2.0
    rows = batch
    comm = float(s.comm_s(tokens))
    total = float(s.linear_s(tokens) + s.head_s(rows) + s.prefill_attention_s(pairs, tokens, tokens)) + comm
    return total, comm


def decode_steps_s(rep: Replica, batch: int, prompt: int, output: int) -> dict[str, np.ndarray]:
    """Per decode step k = 1..O-1 (context P+k): linear, attention and communication seconds."""
    s = rep.step
    k = np.arange(1, max(output, 1), dtype=float)
    ones = np.ones_like(k)
    return {"linear": (s.linear_s(batch) + s.head_s(batch)) * ones,
            "attention": s.decode_attention_s(batch * (prompt + k), batch * ones),
            "comm": s.comm_s(batch) * ones}


def simulate_inference(scenario: Scenario, profiles_dir: str | Path | None = None) -> InferenceResult:
    """Cost one batch of an inference workload (DESIGN.md 3.3 inference keys)."""
    rep = build_replica(scenario, profiles_dir)
    s = rep.step
    batch, prompt, output = lengths_of(scenario, rep.encoder_only)
    from simulator.graph.build import warn_beyond_context
    warn_beyond_context(rep.arch, prompt + output, None, "prompt + output tokens")
    devices = scenario.cluster.devices
    if devices % (s.tp * s.pp):
        raise InputError(f"tp*pp = {s.tp * s.pp} does not divide {devices} devices", field="cluster.devices",
                         expected="a multiple of tp*pp (each model replica uses tp*pp devices)")
    dp = devices // (s.tp * s.pp)
    max_b = rep.max_batch(prompt, output)
    if max_b == 0:
        raise not_fitting_error(rep, prompt, output)
    t_prefill, prefill_comm = prefill_s(rep, batch, prompt)
    steps = decode_steps_s(rep, batch, prompt, output)
    step_total = steps["linear"] + steps["attention"] + steps["comm"]
    n_steps = step_total.shape[0] if output > 1 else 0
    decode_total = float(step_total.sum()) if n_steps else 0.0
    latency = t_prefill + decode_total
    per = decode_total / n_steps if n_steps else 0.0
    produced = batch * (output if output else prompt)
    w, kv, act = rep.memory_bytes(batch, prompt, output)
    total = w + kv + act
    memory = InferenceMemory(
        weights_bytes_per_device=w, kv_cache_bytes_per_device=kv, activations_bytes_per_device=act,
        total_bytes_per_device=total, capacity_bytes=rep.capacity_bytes, fits=total <= rep.capacity_bytes,
        kv_bytes_per_token=0.0 if rep.encoder_only else s.kv_bytes_per_token,
        kv_bytes_per_token_per_device=0.0 if rep.encoder_only else s.kv_bytes_per_token_per_device,
        max_batch_that_fits=max_b,
        kv_capacity_tokens_per_device=0 if rep.encoder_only else rep.kv_capacity_tokens(batch * prompt, batch))
    mean = (lambda a: float(a.mean()) if n_steps else 0.0)
    breakdown = InferenceBreakdown(
        prefill_compute_s=t_prefill - prefill_comm, prefill_comm_s=prefill_comm,
        decode_weights_s_per_token=mean(steps["linear"]), decode_attention_s_per_token=mean(steps["attention"]),
        decode_comm_s_per_token=mean(steps["comm"]),
        decode_bound=decode_bound(rep, batch, prompt + output / 2.0) if n_steps else "none")
    wl = scenario.workload
    return InferenceResult(
        name=scenario.name, model=rep.model_name, hardware=rep.profile.name, devices=devices,
        parallelism={"tp": s.tp, "pp": s.pp, "dp": dp}, batch=batch, prompt_tokens=prompt, output_tokens=output,
        dtype=wl.dtype, weight_dtype=wl.weight_dtype or wl.dtype, kv_dtype=wl.kv_dtype or wl.dtype,
        encoder_only=rep.encoder_only, prefill_s=t_prefill, decode_s_per_token=per, latency_s=latency,
        tokens_per_s=dp * produced / latency, requests_per_s=dp * batch / latency, params=s.params,
        memory=memory, breakdown=breakdown,
        provenance=InferenceProvenance(hardware=rep.profile.name, hardware_provenance=rep.profile.provenance,
                                       model=rep.model_name, capplan_version=__version__))


def decode_bound(rep: Replica, batch: int, mean_ctx: float) -> str:
    """'memory' when a decode step's bytes over bandwidth exceed its FLOPs over peak (roofline);
    weight-only quantized matmuls add their dequantization on the vector units to the compute side."""
    from simulator.cost.compute import peak_flops
    from simulator.cost.dequant import dequant_s
    s = rep.step
    flops = batch * (sum(r.flops_per_token for r in s.layer_ops) * s.layers + mean_ctx * s.attn_flops_per_pair * s.layers)
    bytes_ = s.weight_bytes_per_device + batch * mean_ctx * s.kv_bytes_per_token_per_device
    dtype = "fp8" if (rep.scenario.workload.weight_dtype == "fp8") else s.act_dtype
    t_dq = s.layers * sum(dequant_s(rep.profile, r.weight_elements, batch, r.dequant_flops, r.dtype)
                          for r in s.layer_ops if r.dequant_flops)
    t_c = flops / peak_flops(rep.profile, dtype) + t_dq
    t_m = bytes_ / rep.profile.memory.bandwidth_bytes_per_s
    return "memory" if t_m >= t_c else "compute"

