"""Capture a causal LM's internals through forward hooks, scoped by a context manager.

What is captured per forward pass (S = positions in the pass, kv = positions in the cache):
- `hidden`: the residual stream, the input of block 0 (embedding output, with learned
  positions added for GPT-2) and each block's output;
- `mlp`: the input of each dense MLP's output projection, i.e. the activation after the
  non-linearity (zeros in MoE blocks: their experts' activations are not captured);
- `mlp_write`: what each MLP branch adds to the residual stream (after a post-MLP norm);
- `experts`: an MoE block's routing weight per expert (0 for experts not chosen);
- `attn`: each head's softmax weights of the new positions over the cached keys, from what the
  capture's attention function hands its module's hook (`visualizer/model/attention.py`);
- `lens`: the logit lens (`visualizer/model/lens.py`), the lensed rows of the residual stream
  through the final norm and the unembedding, in one product with the model's own positions
  (hooks on the unembedding layer, `visualizer/model/unembed.py`).

Where the hooks go (which module is the attention, the MLP's output projection, the end of the
MLP branch, the experts) is found by `visualizer/model/inspect.py` and handed in as Parts.
`capture` installs them; the `Recorder` collects what they see during a pass, and its `take`
packs that into numpy (`Captured`), reduced to the detail asked.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from visualizer.detail import Detail
from visualizer.model.attention import ATTN_IMPLEMENTATION, AttentionInputs, attention_weights
from visualizer.model.lens import (
    OWN_ANSWER,
    lens_input,
    lens_logits,
    lens_words,
    unembedded_rows,
)
from visualizer.model.unembed import foldable, product

FULL = Detail()


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
        self.lens_from = 0  # the first position of a pass that is lensed (see generate.py)
        self.clear()

    def clear(self) -> None:
        self.hidden: list[torch.Tensor] = []  # L+1 × [B, S, d]: every batch row (the ghost's too)
        self.mlp: dict[int, torch.Tensor] = {}  # block → [S, d_ff] (dense blocks)
        self.mlp_write: dict[int, torch.Tensor] = {}  # block → [S, d]
        self.routes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # block → ids, weights
        self.attn: dict[int, AttentionInputs] = {}  # block → its query, keys and mask
        self.lens_logits: torch.Tensor | None = None  # [B, S, n, V] when the hooks unembedded
        self._unembedding: torch.Tensor | None = None  # its input [B, S, d], between its hooks

    def before_unembed(self, mod: nn.Module, args: tuple) -> tuple:
        """Keep the unembedding's input and hand the layer no positions: after_unembed runs
        them, with the lensed rows, in one product (model/unembed.py)."""
        self._unembedding = args[0]
        return (args[0].narrow(-2, 0, 0), *args[1:])

    def after_unembed(self, mod: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        """The model's own logits, as the layer would have returned them; the lensed rows'
        are kept for take()."""
        x, self._unembedding = self._unembedding, None  # [B, S, d]
        own = x.reshape(-1, x.shape[-1]).to(mod.weight.device)  # [B·S, d]
        lensed = self._lensed()  # [B, S, n, d] or None
        rows = own if lensed is None else torch.cat([own, lensed.reshape(-1, own.shape[-1])])
        logits = product(mod)(rows)  # [B·S (+ B·S·n), V]
        if lensed is not None:
            self.lens_logits = logits[len(own) :].reshape(*lensed.shape[:-1], -1)
        return logits[: len(own)].reshape(*x.shape[:-1], -1)

    def _lensed(self) -> torch.Tensor | None:
        """The lensed rows of this pass's residual stream from position lens_from on, through
        the final norm, or None (no lens, no such position, or a pass whose rows are not all
        here)."""
        rows = unembedded_rows(self.lens[0], self.n_layers)
        if not rows or len(self.hidden) != self.n_layers + 1:
            return None
        if self.lens_from >= self.hidden[0].shape[1]:
            return None
        device = self.parts.unembed.weight.device
        stacked = torch.stack([self.hidden[r][:, self.lens_from :].to(device) for r in rows], dim=2)
        return lens_input(stacked, self.parts)

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
        unembedded = unembedded_rows(lensed, n)
        own = unembedded != lensed
        start = min(self.lens_from, s)  # positions before it are not lensed
        logits = self.lens_logits  # [B, S - start, n, V]; else the unembedding ran elsewhere
        if logits is None and unembedded and start < s:
            logits = lens_logits(rows[:, start:], self.parts, unembedded)

        def words(row: int) -> tuple[torch.Tensor, torch.Tensor]:  # of batch row `row`
            found = None if logits is None else logits[row]
            return _from(start, *lens_words(found, self.parts, unembedded, (s - start, n + 1), k))

        lens_ids, lens_probs = words(0)
        ghost = words(1) if len(rows) > 1 else (None, None)
        if own:  # left for generate.summarized to fill from the logits: no second unembedding
            for ids in (lens_ids, ghost[0]):
                if ids is not None:
                    ids[:, n] = OWN_ANSWER

        def out(t: torch.Tensor) -> np.ndarray:
            """float16 only where every value fits it: a residual stream beyond 65504 (Gemma's)
            stays float32 rather than become inf."""
            wide = t.numel() and bool(t.abs().amax() > torch.finfo(torch.float16).max)
            return t.to(torch.float32 if wide else dtype).cpu().numpy()

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


def _from(start: int, ids: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lens words of the positions from `start` on, placed after `start` unlensed ones."""
    if not start:
        return ids, probs
    unlensed = torch.full((start, *ids.shape[1:]), -1, dtype=ids.dtype)
    return torch.cat([unlensed, ids]), torch.cat([torch.zeros(start, *probs.shape[1:]), probs])


def group_rms(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[S, W] → [S, groups]: the RMS of contiguous, nearly equal groups of columns (as
    measures.group_rms splits them)."""
    width = x.shape[-1]
    starts = torch.arange(groups, device=x.device) * width // groups
    group = torch.searchsorted(starts, torch.arange(width, device=x.device), right=True) - 1
    sums = torch.zeros(x.shape[0], groups, device=x.device).index_add_(1, group, x * x)
    counts = torch.bincount(group, minlength=groups).clamp(min=1)
    return (sums / counts).sqrt()


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
    if foldable(parts.unembed):
        handles += [parts.unembed.register_forward_pre_hook(rec.before_unembed),
                    parts.unembed.register_forward_hook(rec.after_unembed)]  # fmt: skip
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
