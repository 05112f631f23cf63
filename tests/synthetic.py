"""Frames made up in the tests (for the scene, the handoff, the renderer), with every field."""

import numpy as np

from visualizer.frame import Frame


def synthetic_frame(
    index: int,
    hidden: np.ndarray,  # [L+1, d]
    mlp: np.ndarray,  # [L, d_ff]
    attn: np.ndarray,  # [L, H, n]
    *,
    context_start: int = 0,
    text: str = "x",
    token_id: int | None = None,
    is_prompt: bool = False,
    mlp_write: np.ndarray | None = None,
    topk_ids: np.ndarray | None = None,
    topk_probs: np.ndarray | None = None,
    topk_text: tuple[str, ...] | None = None,
    entropy: float = 1.0,
) -> Frame:
    layers, width = hidden.shape[0] - 1, hidden.shape[1]
    attn = attn.astype(np.float32)
    return Frame(
        index=index, token_id=index if token_id is None else token_id, text=text,
        is_prompt=is_prompt, context_start=context_start, hidden=hidden.astype(np.float32),
        mlp=mlp.astype(np.float32),
        mlp_write=(np.zeros((layers, width), np.float32) if mlp_write is None
                   else mlp_write.astype(np.float32)),
        experts=np.zeros((layers, 0), np.float32), attn=attn, attn_sink=attn[:, :, 0].copy(),
        topk_ids=np.arange(10) if topk_ids is None else topk_ids,
        topk_probs=np.full(10, 0.1, np.float32) if topk_probs is None else topk_probs,
        topk_text=topk_text or ("a",) * 10, entropy=entropy,
        lens_ids=np.full((layers + 1, 5), -1, np.int32), lens_probs=np.zeros((layers + 1, 5),
                                                                            np.float32),
        lens_text=("",) * (layers + 1),
    )  # fmt: skip
