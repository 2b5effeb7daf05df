"""Resolve and validate a parallel layout against the model and the cluster.

`resolve_plan` derives dp = devices / (tp*pp*cp) when it is not given, the
number of micro-batches per pipeline, and checks every rule a layout must
obey; each violation is one `InputError` naming the scenario field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from simulator.cost.memory import grad_dtype
from simulator.errors import InputError
from simulator.schema.graph import TransformerArch
from simulator.schema.scenario import Scenario

SCHEDULES = ("gpipe", "1f1b", "interleaved")
MAX_MICROBATCHES = 100_000   # per pipeline per step; see resolve_plan


@dataclass(frozen=True)
class ResolvedPlan:
    """The layout as the simulation uses it (DESIGN.md 3.3 `parallelism`)."""

    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    sequence_parallel: bool
    schedule: str
    virtual_stages: int
    zero: int
    micro_batch: int
    num_microbatches: int
    global_batch: int
    recompute: str
    grad_bucket_bytes: float
    overlap_grad_reduce: bool
    devices: int
    devices_per_node: int
    grad_reduce_dtype: str = "auto"   # resolved by resolve_plan (cost.memory.grad_dtype)
    first_stage_layers: int | None = None   # uneven pipeline (see `stage_layer_counts`)
    last_stage_layers: int | None = None
    embedding_as_layer: bool = False        # Megatron-Core account_for_embedding/loss_in_pipeline_split
    loss_as_layer: bool = False

    def as_dict(self) -> dict:
        """The layout as a mapping; the uneven-stage keys only when set (even layouts print as before)."""
        d = asdict(self)
        for k in UNEVEN_FIELDS:
            if d[k] in (None, False):
                del d[k]
        return d


UNEVEN_FIELDS = ("first_stage_layers", "last_stage_layers", "embedding_as_layer", "loss_as_layer")


def is_uneven(par) -> bool:
    """Whether a Parallelism (or ResolvedPlan) asks for uneven pipeline stages."""
    return any(getattr(par, k) not in (None, False) for k in UNEVEN_FIELDS)


def stage_layer_counts(num_layers: int, pp: int, first: int | None = None, last: int | None = None) -> list[int]:
    """Transformer layers of each pipeline stage.

    With `first` / `last` (Megatron-Core `get_num_layers_to_build`,
    --decoder-first/last-pipeline-num-layers) those stages hold that many and
    the remaining layers split evenly over the other stages (`resolve_plan`
    checks they divide). Without them the historical split: divmod, the
    remainder on the leading stages.
    """
    if first is None and last is None:
        base, extra = divmod(num_layers, pp)
        return [base + (1 if i < extra else 0) for i in range(pp)]
    rest = num_layers - (first or 0) - (last or 0)
    inner = pp - (first is not None) - (last is not None)
    per = rest // inner if inner > 0 else 0
    counts = [per] * pp
    if first is not None:
        counts[0] = first
    if last is not None:
        counts[-1] = last
    return counts


def chunk_layer_counts(num_layers: int, pp: int, v: int = 1, first: int | None = None,
                       last: int | None = None, embedding: bool = False, loss: bool = False) -> list[int]:
    """Layers of each model chunk, indexed by virtual stage `chunk * pp + device`.

    Even layouts: the layers split over the pp * v chunks (divmod, as before).
    first/last: each device's stage layers split equally over its v chunks, as
    Megatron-Core does (num_layers_per_pipeline_rank // vp_size).
    embedding/loss (Megatron-Core account_for_embedding/loss_in_pipeline_split):
    num_layers + 1 (+ 1) split equally over the chunks, the first (last) chunk
    holding one layer fewer, so it may hold only the embedding (the head).
    """
    if embedding or loss:
        counts = [(num_layers + embedding + loss) // (pp * v)] * (pp * v)
        counts[0] -= embedding
        counts[-1] -= loss
        return counts
    if first is None and last is None:
        base, extra = divmod(num_layers, pp * v)
        return [base + (1 if i < extra else 0) for i in range(pp * v)]
    stages = stage_layer_counts(num_layers, pp, first, last)
    return [stages[j % pp] // v for j in range(pp * v)]


def _fail(message: str, field: str, expected: str, source: str | None):
    raise InputError(message, source=source, field=field, expected=expected)


def resolve_plan(scenario: Scenario, arch: TransformerArch | None, devices_per_node: int,
                 source: str | None = None) -> ResolvedPlan:
    """Check the layout of `scenario` and return it resolved (dp derived, micro-batches counted)."""
    par, wl, devices = scenario.parallelism, scenario.workload, scenario.cluster.devices
    tp, pp, cp, ep = par.tp, par.pp, par.cp, par.ep
    model_par = tp * pp * cp
    if devices % model_par:
        _fail(f"tp*pp*cp = {tp}*{pp}*{cp} = {model_par} does not divide {devices} devices",
              "parallelism", "tp*pp*dp*cp == cluster.devices", source)
    dp = par.dp if par.dp is not None else devices // model_par
    if tp * pp * dp * cp != devices:
        _fail(f"tp*pp*dp*cp = {tp}*{pp}*{dp}*{cp} = {tp * pp * dp * cp} but cluster.devices is {devices}",
              "parallelism.dp", "tp*pp*dp*cp == cluster.devices", source)
    if par.schedule not in SCHEDULES:
        _fail(f"unknown schedule '{par.schedule}'", "parallelism.schedule", " | ".join(SCHEDULES), source)
    v = _virtual_stages(par, source)
    if par.embedding_as_layer or par.loss_as_layer:
        _check_accounted(par, arch, v, source)
    elif par.first_stage_layers is not None or par.last_stage_layers is not None:
        _check_uneven(par, arch, v, source)
    if arch is not None:
        _check_arch(arch, par, v, dp, wl.seq_len, source)
    elif tp > 1 or cp > 1 or ep > 1:
        _fail("tensor, context and expert parallelism need a transformer model",
              "parallelism", "tp = cp = ep = 1 for this model", source)
    if ep > 1 and dp % ep:
        _fail(f"ep = {ep} does not divide dp = {dp}", "parallelism.ep", "ep dividing dp", source)
    if wl.global_batch % dp:
        _fail(f"global_batch {wl.global_batch} is not divisible by dp = {dp}", "workload.global_batch",
              "a multiple of the data-parallel size", source)
    per_replica = wl.global_batch // dp
    if per_replica % wl.micro_batch:
        _fail(f"micro_batch {wl.micro_batch} does not divide the per-replica batch {per_replica}",
              "workload.micro_batch", f"a divisor of global_batch / dp = {per_replica}", source)
    m = per_replica // wl.micro_batch
    if m > MAX_MICROBATCHES:
        # the engine times every micro-batch of a step: beyond this it runs for minutes and
        # out of memory instead of answering (real runs use tens to a few thousand)
        _fail(f"{m} micro-batches per step (global_batch / dp / micro_batch) is more than the "
              f"simulator times", "workload.micro_batch",
              f"at most {MAX_MICROBATCHES:,} micro-batches per step: raise micro_batch or lower global_batch", source)
    if par.schedule == "interleaved" and v > 1 and m % pp:
        _fail(f"interleaved schedule needs the micro-batch count ({m}) to be a multiple of pp = {pp}",
              "workload.micro_batch", "global_batch / dp / micro_batch divisible by pp", source)
    if par.sequence_parallel and tp == 1:
        pass   # harmless: sequence parallelism is a no-op without tensor parallelism
    return ResolvedPlan(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep,
                        sequence_parallel=par.sequence_parallel and tp > 1, schedule=par.schedule,
                        virtual_stages=v, zero=par.zero, micro_batch=wl.micro_batch,
                        num_microbatches=m, global_batch=wl.global_batch, recompute=wl.recompute,
                        grad_bucket_bytes=par.grad_bucket_bytes,
                        overlap_grad_reduce=par.overlap_grad_reduce, devices=devices,
                        devices_per_node=devices_per_node,
                        grad_reduce_dtype=grad_dtype(wl.dtype, par.grad_reduce_dtype),
                        first_stage_layers=par.first_stage_layers, last_stage_layers=par.last_stage_layers,
                        embedding_as_layer=par.embedding_as_layer, loss_as_layer=par.loss_as_layer)


def _need_transformer_pipeline(par, arch, field, what_needs: str, off: str, source) -> None:
    """Uneven splits need pp >= 2 and a transformer (its layers are what the stages hold)."""
    if par.pp < 2:
        _fail(f"{what_needs} a pipeline, but pp = {par.pp}", field, f"pp >= 2, or {off}", source)
    if arch is None:
        _fail("uneven pipeline stages need a transformer model (its layers are the stages)", field,
              f"{off} for this model", source)


def _check_accounted(par, arch, v, source):
    """embedding_as_layer / loss_as_layer: a transformer pipeline whose layers plus the counted embedding
    and loss split into pp * virtual_stages equal chunks; not combined with first/last_stage_layers
    (Megatron-Core asserts the two ways of unevenness exclusive)."""
    field = "parallelism.embedding_as_layer" if par.embedding_as_layer else "parallelism.loss_as_layer"
    if par.first_stage_layers is not None or par.last_stage_layers is not None:
        _fail("embedding_as_layer / loss_as_layer and first_stage_layers / last_stage_layers are two ways "
              "to unbalance the edge stages; give one", field,
              "either the counted embedding/loss or explicit first/last stage layers", source)
    _need_transformer_pipeline(par, arch, field, "counting the embedding or loss as a pipeline layer needs",
                               "embedding_as_layer and loss_as_layer false", source)
    total = arch.num_layers + par.embedding_as_layer + par.loss_as_layer
    chunks = par.pp * v
    if total % chunks or total < chunks:
        _fail(f"the {arch.num_layers} layers + {total - arch.num_layers} counted (embedding/loss) = {total} do not "
              f"split into pp * virtual_stages = {chunks} equal model chunks", field,
              f"num_layers + counted embedding/loss ({total}) a multiple of pp * virtual_stages", source)


def _check_uneven(par, arch, v, source):
    """first/last_stage_layers: a pipeline of a transformer, and the rest splitting evenly (Megatron-Core
    asserts "the left over layers must be divisible by left over stages", and each stage's layers
    divisible by the virtual pipeline size)."""
    first, last = par.first_stage_layers, par.last_stage_layers
    field = "parallelism.first_stage_layers" if first is not None else "parallelism.last_stage_layers"
    _need_transformer_pipeline(par, arch, field, "uneven first/last pipeline stages need",
                               "first_stage_layers and last_stage_layers left out", source)
    n, pp = arch.num_layers, par.pp
    rest = n - (first or 0) - (last or 0)
    inner = pp - (first is not None) - (last is not None)
    given = " + ".join(f"{k} {x}" for k, x in (("first", first), ("last", last)) if x is not None)
    if inner == 0 and rest != 0:
        _fail(f"first + last stage layers ({first} + {last}) must be the model's {n} layers with pp = 2",
              field, f"first_stage_layers + last_stage_layers == {n}", source)
    if inner > 0 and (rest < inner or rest % inner):
        _fail(f"after the {given} stage layers, the remaining {rest} of the {n} layers do not split evenly "
              f"over the other {inner} stages", field,
              f"({n} - first - last) a positive multiple of the {inner} other stages", source)
    if v > 1:
        counts = stage_layer_counts(n, pp, first, last)
        bad = next(((i, c) for i, c in enumerate(counts) if c % v), None)
        if bad is not None:
            _fail(f"stage {bad[0]} has {bad[1]} layers, which do not split into virtual_stages = {v} equal "
                  "model chunks (Megatron-Core splits each stage's layers evenly over its chunks)", field,
                  f"every stage's layers (first, middle, last) divisible by virtual_stages = {v}, or "
                  "embedding_as_layer / loss_as_layer instead (one layer fewer in the edge chunks only)", source)


def _virtual_stages(par, source) -> int:
    """Model chunks per stage; only the interleaved schedule has more than one (Narayanan et al. 2021, 2.2.2).

    `interleaved` with one chunk per stage would silently be plain 1F1B, and chunks
    under 1F1B/GPipe would silently be ignored: both are refused, as is interleaving
    without a pipeline (Megatron-LM requires pipeline-model-parallel size > 1 for it).
    """
    v = par.virtual_stages
    if par.schedule != "interleaved":
        if v != 1:
            _fail(f"virtual_stages = {v} needs schedule 'interleaved' (schedule is '{par.schedule}')",
                  "parallelism.virtual_stages", "1 unless parallelism.schedule is interleaved", source)
        return 1
    if v < 2:
        _fail(f"schedule 'interleaved' with virtual_stages = {v} would be plain 1F1B",
              "parallelism.virtual_stages", "at least 2 model chunks per stage with schedule interleaved, "
              "or schedule 1f1b", source)
    if par.pp < 2:
        _fail(f"schedule 'interleaved' needs a pipeline, but pp = {par.pp}", "parallelism.pp",
              "pp >= 2 with schedule interleaved, or schedule 1f1b", source)
    return v


def _check_arch(arch: TransformerArch, par, v, dp, seq_len, source):
    tp, pp, cp, ep = par.tp, par.pp, par.cp, par.ep
    if arch.num_heads % tp:
        _fail(f"tp = {tp} does not divide the {arch.num_heads} attention heads", "parallelism.tp",
              f"a divisor of {arch.num_heads}", source)
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        _fail(f"tp = {tp} and the {arch.num_kv_heads} KV heads do not divide one another",
              "parallelism.tp", "tp dividing the KV heads (or a multiple of them)", source)
    if pp > arch.num_layers:
        _fail(f"pp = {pp} pipeline stages but the model has only {arch.num_layers} layers",
              "parallelism.pp", f"at most {arch.num_layers}", source)
    counted = par.embedding_as_layer + par.loss_as_layer   # edge chunks may then hold no layer
    if pp * v > arch.num_layers + counted:
        _fail(f"pp * virtual_stages = {pp}*{v} = {pp * v} model chunks but the model has only "
              f"{arch.num_layers} layers", "parallelism.virtual_stages", f"pp * virtual_stages <= {arch.num_layers}", source)
    if v > 1 and arch.num_layers % (pp * v) and not is_uneven(par):
        _fail(f"the {arch.num_layers} layers do not split into pp * virtual_stages = {pp}*{v} = {pp * v} "
              "equal model chunks", "parallelism.virtual_stages",
              f"num_layers ({arch.num_layers}) divisible by pp * virtual_stages", source)
    if ep > 1 and arch.num_experts == 1:
        _fail("expert parallelism needs a mixture-of-experts model", "parallelism.ep", "1 for a dense model", source)
    if ep > 1 and arch.num_experts % ep:
        _fail(f"ep = {ep} does not divide the {arch.num_experts} experts", "parallelism.ep",
              f"a divisor of {arch.num_experts}", source)
    if cp > 1 and seq_len % (2 * cp):
        _fail(f"seq_len {seq_len} is not divisible by 2*cp = {2 * cp}", "parallelism.cp",
              "seq_len divisible by 2*cp (load-balanced ring attention)", source)
