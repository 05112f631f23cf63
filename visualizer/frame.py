"""The frozen per-token Frame: the one thing that crosses from the model to the renderer."""

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything captured for one position of the sequence (prompt or generated).

    Arrays are float32 and read-only. L = blocks, H = query heads, d = model width,
    d_ff = MLP width, n = positions this token attends to (context_start .. index).
    """

    index: int  # position in this run: 0 = the first prompt token kept in view
    token_id: int
    text: str  # the text this token adds to the output ("" while a UTF-8 character is incomplete)
    is_prompt: bool
    context_start: int  # run position of attn[..., 0]; > 0 once older tokens slid out of view
    hidden: np.ndarray  # [L+1, d] residual stream: embedding output, then each block's output
    mlp: np.ndarray  # [L, d_ff] MLP activation: act(gate)*up (SwiGLU) or act(fc) (GPT-2), pre-down
    attn: np.ndarray  # [L, H, n] this token's attention over the positions in view
    topk_ids: np.ndarray  # [k] next-token candidates, most likely first (model's own T=1 softmax)
    topk_probs: np.ndarray  # [k]
    topk_text: tuple[str, ...]  # [k] each candidate decoded alone (the renderer has no tokenizer)
    entropy: float  # nats, of the full next-token distribution (T=1)

    def __post_init__(self) -> None:
        for name in ("hidden", "mlp", "attn", "topk_ids", "topk_probs"):
            getattr(self, name).flags.writeable = False

    def __reduce__(self):
        """Rebuild through __init__ when unpickled (frames come from the model process)."""
        return (Frame, tuple(getattr(self, f.name) for f in fields(self)))
