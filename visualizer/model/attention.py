"""The capture's attention: every head's weights without transformers' eager attention.

`output_attentions` would need the eager attention for everything. Instead the model runs a
registered attention function, "neuroweb", that computes the output with SDPA (the fast path;
with logit softcapping, which SDPA lacks, the eager way) and hands the rotated query and the
cached keys to a forward hook on each attention module (model/capture.py); the weights of just
the new rows are then computed for all blocks in one batch (`attention_weights`). Grouped-query
attention is expanded so every query head gets its own row; a sliding-window block's shorter
cache is aligned with the others' positions.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_IMPLEMENTATION = "neuroweb"


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
