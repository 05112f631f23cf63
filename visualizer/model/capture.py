"""Capture a causal LM's internals through forward hooks, scoped by a context manager.

What is captured per forward pass (S = positions in the pass, kv = positions in the cache):
- `hidden`: the residual stream, the input of block 0 (embedding output, with learned
  positions added for GPT-2) and each block's output;
- `mlp`: the input of each dense MLP's output projection, i.e. the activation after the
  non-linearity (zeros in MoE blocks: their experts' activations are not captured);
- `mlp_write`: what each MLP branch adds to the residual stream (after a post-MLP norm);
- `experts`: an MoE block's routing weight per expert (0 for experts not chosen);
- `attn`: each head's softmax weights of the new positions over the cached keys.

Where the hooks go (which module is the attention, the MLP's output projection, the end of the
MLP branch, the experts) is found by `visualizer/model/inspect.py` and handed in as Parts.

Attention: `output_attentions` would need transformers' eager attention for everything. Instead
the model runs a registered attention function, "neuroweb", that computes the output with SDPA
(the fast path; with logit softcapping, which SDPA lacks, the eager way) and hands the rotated
query and the cached keys to a forward hook on each attention module; the weights of just the
new rows are then computed for all blocks in one batch. Grouped-query attention is expanded so
every query head gets its own row; a sliding-window block's shorter cache is aligned with the
others' positions.
"""

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from visualizer.detail import Detail

ATTN_IMPLEMENTATION = "neuroweb"
FULL = Detail()


@dataclass(frozen=True)
class AttentionInputs:
    query: torch.Tensor  # [H, S, hd]
    key: torch.Tensor  # [KV, kv, hd]
    mask: torch.Tensor | None  # bool [1, 1, S, kv] or None (plain causal)
    scale: float
    softcap: float | None = None  # logits → tanh(logits / softcap) · softcap
    sliding_window: int | None = None  # what the model handed its attention function


def capture_attention(
    module: nn.Module,
    query: torch.Tensor,  # [B, H, S, hd], rotated
    key: torch.Tensor,  # [B, KV, kv, hd], the whole cache, rotated
    value: torch.Tensor,  # [B, KV, kv, hd]
    attention_mask: torch.Tensor | None,  # bool [B, 1, S, kv] (True = may attend) or None
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, AttentionInputs]:
    """SDPA's output, and in the weights' slot the inputs that the weights are computed from.

    The weights are computed later for all blocks at once (Recorder.take): one batched matmul
    and softmax instead of a handful of small ops per block, which cost 8% of a decode step.
    """
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    softcap = kwargs.pop("softcap", None)
    if softcap is None:
        out, _ = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    else:  # SDPA has no softcapping: the eager way
        groups = query.shape[1] // key.shape[1]
        scores = torch.matmul(query, repeat_kv(key, groups).transpose(2, 3)) * scale
        scores = torch.tanh(scores / softcap) * softcap
        s, kv = scores.shape[-2:]
        allowed = torch.ones(s, kv, dtype=torch.bool, device=scores.device).tril(kv - s)
        if attention_mask is not None:  # None: plain causal, which SDPA would have done
            allowed = allowed & attention_mask
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        out = torch.matmul(weights, repeat_kv(value, groups)).transpose(1, 2).contiguous()
    inputs = AttentionInputs(query[0], key[0], attention_mask, scale, softcap,
                             kwargs.get("sliding_window"))  # fmt: skip
    return out, inputs


AttentionInterface.register(ATTN_IMPLEMENTATION, capture_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


@dataclass(frozen=True)
class Captured:
    """One forward pass's internals, as numpy, per position of the pass, at the detail asked."""

    hidden: np.ndarray  # [S, L+1, d]
    mlp: np.ndarray  # [S, L, d_ff], or [S, L, nodes] summaries
    mlp_write: np.ndarray  # [S, L, d]
    experts: np.ndarray  # [S, L, E] (E = 0 without MoE)
    attn: np.ndarray  # [S, L, H, positions - attn_first]: columns attn_first .. positions-1
    attn_sink: np.ndarray  # [S, L, H]: column 0, the first position in view
    attn_first: int  # the view position of attn's first column
    lens_ids: np.ndarray  # [S, L+1, k] the logit lens's top words per layer (-1: not lensed)
    lens_probs: np.ndarray  # [S, L+1, k]
    ghost_lens_ids: np.ndarray | None = None  # the same of batch row 1, the ghost, if any
    ghost_lens_probs: np.ndarray | None = None


class Recorder:
    """Collects the tensors the hooks see during one forward pass; take() empties it."""

    def __init__(self, parts, lens: tuple[tuple[int, ...], int] = ((), 5)) -> None:
        """`lens`: the rows (0: the embedding, l: block l's output) lensed, and how many words
        each keeps."""
        self.parts = parts
        self.n_layers, self.mlp_width, self.n_experts = (
            len(parts.blocks), parts.mlp_width, parts.n_experts)  # fmt: skip
        self.lens = lens
        self.clear()

    def clear(self) -> None:
        self.hidden: list[torch.Tensor] = []  # L+1 × [B, S, d]: every batch row (the ghost's too)
        self.mlp: dict[int, torch.Tensor] = {}  # block → [S, d_ff] (dense blocks)
        self.mlp_write: dict[int, torch.Tensor] = {}  # block → [S, d]
        self.routes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # block → ids, weights
        self.attn: dict[int, AttentionInputs] = {}  # block → its query, keys and mask

    def take(self, positions: int, detail: Detail = FULL) -> Captured:
        """The pass's internals, reduced to `detail` on the model's device before they leave
        it; `positions`: how many the model has in view, the pass's own included."""
        n = self.n_layers
        if len(self.hidden) != n + 1 or len(self.attn) != n or len(self.mlp_write) != n:
            counts = (len(self.hidden), len(self.attn), len(self.mlp_write))
            raise RuntimeError(f"capture saw {counts} tensors for {n} blocks")
        device = self.hidden[0].device
        rows = torch.stack([h.to(device) for h in self.hidden], dim=2).float()  # [B, S, L+1, d]
        hidden = rows[0]
        s = hidden.shape[0]
        mlp = torch.zeros(s, n, detail.nodes or self.mlp_width, device=device)
        for block, act in self.mlp.items():
            act = act.to(device).float()
            if detail.nodes:
                mlp[:, block] = group_rms(act, detail.nodes)
            else:
                mlp[:, block, : act.shape[-1]] = act
        experts = torch.zeros(s, n, self.n_experts, device=device)
        for block, (ids, weights) in self.routes.items():
            experts[:, block].scatter_(1, ids.to(device).reshape(s, -1),
                                       weights.to(device).float().reshape(s, -1))  # fmt: skip
        write = torch.stack([self.mlp_write[b].to(device) for b in range(n)], dim=1).float()
        weights = attention_weights([self.attn[b] for b in range(n)], positions)  # [L, H, S, P]
        first = max(0, positions - s - detail.attention + 1) if detail.attention else 0
        dtype = torch.float16 if detail.dtype == "float16" else torch.float32
        lensed, k = self.lens
        screened = unembedded_rows(lensed, n)
        own = screened != lensed
        lens_ids, lens_probs = logit_lens(hidden, self.parts, screened, k)
        ghost = logit_lens(rows[1], self.parts, screened, k) if len(rows) > 1 else (None, None)
        if own:  # left for generate.summarized to fill from the logits: no second unembedding
            for ids in (lens_ids, ghost[0]):
                if ids is not None:
                    ids[:, n] = OWN_ANSWER

        def out(t: torch.Tensor) -> np.ndarray:
            return t.to(dtype).cpu().numpy()

        captured = Captured(
            hidden=out(hidden), mlp=out(mlp), mlp_write=out(write), experts=out(experts),
            attn=out(weights[..., first:].permute(2, 0, 1, 3)),
            attn_sink=out(weights[..., 0].permute(2, 0, 1)), attn_first=first,
            lens_ids=lens_ids.numpy(), lens_probs=lens_probs.numpy(),
            ghost_lens_ids=None if ghost[0] is None else ghost[0].numpy(),
            ghost_lens_probs=None if ghost[1] is None else ghost[1].numpy(),
        )  # fmt: skip
        self.clear()
        return captured


def logit_lens(
    hidden: torch.Tensor, parts, rows: tuple[int, ...], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What each of `rows` of the residual stream [S, L+1, d] would say next: through the
    model's own final norm and unembedding (and final softcap), its top `k` tokens and their
    probabilities; [S, L+1, k] each, -1 and 0 for rows not lensed.

    All rows in one product. Where the machine multiplies a cheaper copy of the unembedding
    faster than the model's own (`_screen`: float16 packed for fbgemm on a CPU, 0.02 % per
    logit; else bfloat16, 0.4 %), the whole vocabulary is scored through it only to find each
    row's SCREEN × k best candidates; those are scored again exactly in the model's own
    precision, and only those exact logits are reported. The softmax's normaliser takes the
    rest of the vocabulary from the screen."""
    s, layers = hidden.shape[:2]
    ids = torch.full((s, layers, k), -1, dtype=torch.int32)
    probs = torch.zeros(s, layers, k)
    if not rows:
        return ids, probs
    weight = parts.unembed.weight
    bias = getattr(parts.unembed, "bias", None)
    x = hidden[:, list(rows)].to(weight.device, weight.dtype)  # [S, n, d]
    if parts.final_norm is not None:
        x = parts.final_norm(x)
    screen = _screen(parts.unembed)
    if screen is None:  # the model's own precision is as fast here: score exactly once
        logits = _softcapped(parts.unembed(x).float(), parts.final_softcap)
        top = logits.topk(k, dim=-1)
        chosen, exact = top.indices, top.values
    else:
        approx = _softcapped(screen(x), parts.final_softcap)
        candidates = approx.topk(min(SCREEN * k, approx.shape[-1]), dim=-1).indices
        exact_all = torch.einsum("snd,sncd->snc", x.float(), weight[candidates].float())
        if bias is not None:
            exact_all = exact_all + bias[candidates].float()
        exact_all = _softcapped(exact_all, parts.final_softcap)
        logits = approx.scatter(-1, candidates, exact_all)  # exact where it is reported
        order = exact_all.topk(k, dim=-1)
        chosen, exact = candidates.gather(-1, order.indices), order.values
    ids[:, list(rows)] = chosen.to(torch.int32).cpu()
    probs[:, list(rows)] = (exact - _logsumexp(logits)).exp().cpu()
    return ids, probs


def _logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """log Σ exp over the last dim, kept. torch's own took 7.5 ms for the lens's [1, 9, 49152]
    on a CPU (a tenth of a SmolLM2 token): most of a vocabulary lies over 87 below the best
    logit, where exp() returns denormals, and those are slow. Terms below FLOOR are taken at
    FLOOR: each adds under 2e-35 of the largest, nothing a float32 sum can hold."""
    top = logits.amax(dim=-1, keepdim=True)
    return top + (logits - top).clamp(min=FLOOR).exp().sum(dim=-1, keepdim=True).log()


FLOOR = -80.0  # exp(-80) ≈ 1.8e-35: still a normal float32


SCREEN = 4  # candidates scored exactly per word reported
OWN_ANSWER = -2  # lens id of a last row that the model's own logits fill (-1: not lensed)
TIMED_VOCAB, TIMED_ROWS, TIMINGS = 4096, 9, 5  # how the screens are timed
PACKING_THREAD = "neuroweb-lens-screen"
IDLE_S = 0.5  # a model host waiting this long for work is idle: prepare_lens's moment
Screen = Callable[[torch.Tensor], torch.Tensor]  # [..., d] → float32 logits [..., V]
_screens: "weakref.WeakKeyDictionary[nn.Module, Screen | None]" = weakref.WeakKeyDictionary()
_packing: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()  # prepare_lens has seen these


def _softcapped(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    return torch.tanh(logits / cap) * cap if cap else logits


def _screen(unembed: nn.Module) -> Screen | None:
    """The cheaper copy of the unembedding that the vocabulary is scored with now, or None
    when none is faster than the model's own by a margin. The bfloat16 copy is measured on a
    slice of the vocabulary at a decode step's shape and made at once (a few tens of ms, so
    the first token barely waits); the float16 packed one replaces it later (prepare_lens)."""
    if unembed not in _screens:
        weight = unembed.weight.detach()
        _screens[unembed] = None
        if _screenable(weight):
            x = torch.randn(TIMED_ROWS, weight.shape[1], device=weight.device)
            part, sliced = weight[:TIMED_VOCAB], _bfloat16_screen(weight[:TIMED_VOCAB])
            if _timed(lambda: sliced(x)) < 0.7 * _timed(lambda: x.to(part.dtype) @ part.T):
                _screens[unembed] = _bfloat16_screen(weight)
    return _screens[unembed]


def _screenable(weight: torch.Tensor) -> bool:
    return weight.dtype in (torch.float32, torch.float16) and weight.device.type != "meta"


def prepare_lens(parts) -> None:
    """Start making the lens's float16 packed screen, once per model: on a CPU with fbgemm,
    float16 weights packed for it (products summed in float32), made and measured on a
    thread, whole (a slice fits in cache and hides the difference), and swapped in if faster.
    For SmolLM2 packing takes 0.6 s of one core with the GIL released, for 4.1 ms instead of
    6.4 per token's 9 rows, and 0.02 % per logit instead of 0.4 %. Called when the model has
    a moment: after an answer's first token (generate_frames), or while a model process waits
    for its first prompt; before that first token it delayed it by 0.3-0.6 s on two cores.
    The thread is not a daemon: an exiting process waits for it (under a second) rather than
    tear torch down under it, which aborts the process."""
    unembed = parts.unembed
    if unembed in _packing:  # asked after every token: nothing more to do after the first
        return
    _packing.add(unembed)
    _screen(unembed)
    weight = unembed.weight.detach()
    if not _screenable(weight) or weight.device.type != "cpu":
        return
    x = torch.randn(TIMED_ROWS, weight.shape[1])
    threading.Thread(target=_pack_if_faster, args=(weakref.ref(unembed), x),
                     name=PACKING_THREAD).start()  # fmt: skip


def _pack_if_faster(unembed: "weakref.ref[nn.Module]", x: torch.Tensor) -> None:
    """The float16 packed screen, swapped in if it beats the screen in use (or, with none,
    the model's own precision by the margin)."""
    module = unembed()
    if module is None:
        return
    weight = module.weight.detach()
    try:
        packed = _float16_packed_screen(weight)
    except RuntimeError:  # this torch lacks the kernel
        return
    now = _screens.get(module)
    beat = _timed(lambda: now(x)) if now else 0.7 * _timed(lambda: x.to(weight.dtype) @ weight.T)
    if _timed(lambda: packed(x)) < beat:
        _screens[module] = packed


def _float16_packed_screen(weight: torch.Tensor) -> Screen:
    packed = torch.ops.quantized.linear_prepack_fp16(weight.float(), None)
    return lambda x: torch.ops.quantized.linear_dynamic_fp16(x.float(), packed)


def _bfloat16_screen(weight: torch.Tensor) -> Screen:
    copy = weight.to(torch.bfloat16)
    return lambda x: (x.to(torch.bfloat16) @ copy.T).float()


def _timed(product: Callable[[], object]) -> float:
    product()  # warm
    best = float("inf")
    for _ in range(TIMINGS):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return best


def lens_rows(layers: int, every: int) -> tuple[int, ...]:
    """The rows of a model with `layers` blocks that the lens reads: every `every`th from the
    embedding up, and always the last (the model's own answer); none when `every` is 0."""
    if every <= 0:
        return ()
    return tuple(sorted({*range(0, layers + 1, every), layers}))


def unembedded_rows(rows: tuple[int, ...], layers: int) -> tuple[int, ...]:
    """The lensed rows that go through the unembedding: all but the last block's output,
    whose words the model's own logits give exactly (Recorder.take, generate.summarized)."""
    return rows[:-1] if rows[-1:] == (layers,) else rows


def group_rms(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[S, W] → [S, groups]: the RMS of contiguous, nearly equal groups of columns (as
    measures.group_rms splits them)."""
    width = x.shape[-1]
    starts = torch.arange(groups, device=x.device) * width // groups
    group = torch.searchsorted(starts, torch.arange(width, device=x.device), right=True) - 1
    sums = torch.zeros(x.shape[0], groups, device=x.device).index_add_(1, group, x * x)
    counts = torch.bincount(group, minlength=groups).clamp(min=1)
    return (sums / counts).sqrt()


def attention_weights(inputs: list[AttentionInputs], positions: int) -> torch.Tensor:
    """softmax(q·kᵀ·scale (softcapped) + mask) for all blocks at once: [L, H, S, positions],
    float32. A block whose cache holds fewer keys (a sliding window's) holds the newest ones:
    its weights are aligned to the right, zeros before."""
    device = inputs[0].query.device
    query = torch.stack([i.query.to(device) for i in inputs]).float()  # [L, H, S, hd]
    s = query.shape[2]
    causal = torch.ones(s, positions, dtype=torch.bool, device=device).tril(positions - s)
    keys, masks = [], []
    for i in inputs:
        key = i.key.to(device)
        missing = positions - key.shape[1]
        keys.append(nn.functional.pad(key, (0, 0, missing, 0)) if missing else key)
        if missing or i.mask is not None:  # a sliding window's: its own mask
            mask = causal.clone()
            mask[:, :missing] = False
            if i.mask is not None:
                mask[:, missing:] &= i.mask[0, 0].to(device)
            masks.append(mask)
        else:
            masks.append(causal)
    key = torch.stack(keys).float()  # [L, KV, positions, hd]
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)  # [L, H, positions, hd]
    scales = {i.scale for i in inputs}
    scale = scales.pop() if len(scales) == 1 else torch.tensor(
        [i.scale for i in inputs], device=device)[:, None, None, None]  # fmt: skip
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # [L, H, S, positions]
    caps = [i.softcap for i in inputs]
    if any(caps):
        cap = torch.tensor([c or 0.0 for c in caps], device=device)[:, None, None, None]
        capped = torch.tanh(scores / cap.clamp(min=1e-9)) * cap
        scores = torch.where(cap > 0, capped, scores)
    plain = all(m is causal for m in masks)
    allowed = causal if plain else torch.stack(masks)[:, None]  # [L, 1, S, positions]
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


@contextmanager
def capture(model: nn.Module, parts, lens: tuple[tuple[int, ...], int] = ((), 5)
            ) -> Iterator[Recorder]:  # fmt: skip
    """Install the hooks (at the modules `parts` names, from inspect_model) and the capturing
    attention for the duration of the block; `lens`: the rows lensed and words kept."""
    rec = Recorder(parts, lens)
    handles = [
        parts.blocks[0].register_forward_pre_hook(
            lambda mod, args, kwargs: rec.hidden.append(_first(args, kwargs).detach()),
            with_kwargs=True,
        )
    ]
    for i, block in enumerate(parts.blocks):

        def output(mod, args, out, i=i) -> None:
            rec.hidden.append(_t(out))

        def attention(mod, args, out, i=i) -> None:
            rec.attn[i] = out[1]

        def activation(mod, args, i=i) -> None:
            rec.mlp[i] = args[0][0].detach()

        def write(mod, args, out, i=i) -> None:
            rec.mlp_write[i] = _t(out)[0]

        def routed(mod, args, kwargs, i=i) -> None:
            ids, weights = _routing(args, kwargs)
            rec.routes[i] = (ids.detach(), weights.detach())

        handles += [
            block.register_forward_hook(output),
            parts.attentions[i].register_forward_hook(attention),
            parts.mlp_writes[i].register_forward_hook(write),
        ]
        if parts.downs[i] is not None:
            handles.append(parts.downs[i].register_forward_pre_hook(activation))
        if parts.experts[i] is not None:
            handles.append(parts.experts[i].register_forward_pre_hook(routed, with_kwargs=True))
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    try:
        yield rec
    finally:
        for handle in handles:
            handle.remove()
        model.set_attn_implementation(previous)


def _routing(args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The experts' inputs in transformers 5: (hidden, top_k_index, top_k_weights)."""
    ids = args[1] if len(args) > 1 else kwargs["top_k_index"]
    weights = args[2] if len(args) > 2 else kwargs["top_k_weights"]
    return ids, weights


def _t(out: torch.Tensor | tuple) -> torch.Tensor:
    return (out[0] if isinstance(out, tuple) else out).detach()


def _first(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]
