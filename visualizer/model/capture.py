"""Capture a causal LM's internals through forward hooks, scoped by a context manager.

What is captured per forward pass (S = positions in the pass, kv = positions in the cache):
- `hidden`: the residual stream, the input of block 0 (embedding output, with learned
  positions added for GPT-2) and each block's output;
- `mlp`: the input of each MLP's down projection, i.e. the activation after the non-linearity;
- `attn`: each head's softmax weights of the new positions over the cached keys.

Attention: `output_attentions` would need transformers' eager attention for everything. Instead
the model runs a registered attention function, "neuroweb", that computes the output with SDPA
(the fast path) and hands the rotated query and the cached keys to a forward hook on each
attention module; the weights of just the new rows are then computed for all blocks in one
batch. Grouped-query attention is expanded so every query head gets its own row.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from visualizer.errors import UserError

ATTN_IMPLEMENTATION = "neuroweb"


@dataclass(frozen=True)
class AttentionInputs:
    query: torch.Tensor  # [H, S, hd]
    key: torch.Tensor  # [KV, kv, hd]
    mask: torch.Tensor | None  # bool [1, 1, S, kv] or None (plain causal)
    scale: float


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
    out, _ = sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    return out, AttentionInputs(query[0], key[0], attention_mask, scale)


AttentionInterface.register(ATTN_IMPLEMENTATION, capture_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


@dataclass(frozen=True)
class Parts:
    """Where the pieces of one decoder-only transformer are, found by structure, not by name."""

    blocks: nn.ModuleList
    attentions: tuple[nn.Module, ...]
    mlp_downs: tuple[nn.Module, ...]  # the projection back to d_model inside each MLP


_DOWN_NAMES = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "fc_out", "w2")


def find_parts(model: nn.Module) -> Parts:
    n = model.config.num_hidden_layers
    blocks = next(
        (m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == n), None
    )
    if blocks is None:
        raise UserError(f"{type(model).__name__}: cannot find its {n} transformer blocks")
    attentions, downs = [], []
    for block in blocks:
        attn = next((m for name, m in block.named_children() if "attn" in name), None)
        mlp = next((m for name, m in block.named_children() if "mlp" in name), None)
        down = mlp and next((getattr(mlp, d) for d in _DOWN_NAMES if hasattr(mlp, d)), None)
        if attn is None or down is None:
            raise UserError(f"{type(model).__name__}: unsupported block layout (no attn/mlp)")
        attentions.append(attn)
        downs.append(down)
    return Parts(blocks, tuple(attentions), tuple(downs))


@dataclass(frozen=True)
class Captured:
    """One forward pass's internals, as numpy, per position of the pass."""

    hidden: np.ndarray  # [S, L+1, d]
    mlp: np.ndarray  # [S, L, d_ff]
    attn: np.ndarray  # [S, L, H, kv]


class Recorder:
    """Collects the tensors the hooks see during one forward pass; take() empties it."""

    def __init__(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.hidden: list[torch.Tensor] = []  # L+1 × [S, d]
        self.mlp: list[torch.Tensor] = []  # L × [S, d_ff]
        self.attn: list[AttentionInputs] = []  # L × one block's query, keys and mask

    def clear(self) -> None:
        self.hidden, self.mlp, self.attn = [], [], []

    def take(self) -> Captured:
        counts = (len(self.hidden), len(self.mlp), len(self.attn))
        if counts != (self.n_layers + 1, self.n_layers, self.n_layers):
            raise RuntimeError(f"capture saw {counts} tensors for {self.n_layers} blocks")
        captured = Captured(
            hidden=torch.stack(self.hidden, dim=1).float().numpy(),  # [S, L+1, d]
            mlp=torch.stack(self.mlp, dim=1).float().numpy(),  # [S, L, d_ff]
            attn=attention_weights(self.attn).permute(2, 0, 1, 3).numpy(),  # [S, L, H, kv]
        )
        self.clear()
        return captured


def attention_weights(inputs: list[AttentionInputs]) -> torch.Tensor:
    """softmax(q·kᵀ·scale + mask) for all blocks at once: [L, H, S, kv], float32."""
    query = torch.stack([i.query for i in inputs]).float()  # [L, H, S, hd]
    key = torch.stack([i.key for i in inputs]).float()  # [L, KV, kv, hd]
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)  # [L, H, kv, hd]
    scores = torch.matmul(query, key.transpose(2, 3)) * inputs[0].scale  # [L, H, S, kv]
    s, kv = scores.shape[-2:]
    allowed = torch.ones(s, kv, dtype=torch.bool).tril(kv - s)  # the new positions are last
    if any(i.mask is not None for i in inputs):  # e.g. sliding-window blocks
        masks = [allowed if i.mask is None else i.mask[0, 0] & allowed for i in inputs]
        allowed = torch.stack(masks)[:, None]  # [L, 1, S, kv]
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


@contextmanager
def capture(model: nn.Module) -> Iterator[Recorder]:
    """Install the hooks and the capturing attention for the duration of the block."""
    parts = find_parts(model)
    rec = Recorder(len(parts.blocks))
    handles = [
        parts.blocks[0].register_forward_pre_hook(
            lambda mod, args, kwargs: rec.hidden.append(_first(args, kwargs)[0].detach()),
            with_kwargs=True,
        )
    ]
    for block, attn, down in zip(parts.blocks, parts.attentions, parts.mlp_downs, strict=True):
        handles.append(
            block.register_forward_hook(lambda mod, args, out: rec.hidden.append(_t(out)[0]))
        )
        handles.append(attn.register_forward_hook(lambda mod, args, out: rec.attn.append(out[1])))
        handles.append(
            down.register_forward_pre_hook(lambda mod, args: rec.mlp.append(args[0][0].detach()))
        )
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    try:
        yield rec
    finally:
        for handle in handles:
            handle.remove()
        model.set_attn_implementation(previous)


def _t(out: torch.Tensor | tuple) -> torch.Tensor:
    return (out[0] if isinstance(out, tuple) else out).detach()


def _first(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]
