"""The frozen per-token Frame: the one thing that crosses from the model to the renderer."""

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True, eq=False)
class Ghost:
    """The untouched run at the same position, while an intervention changes the frame's run:
    what it said and would say (visualizer/interventions.py)."""

    token_id: int  # the token it took (for a prompt position: the prompt's)
    text: str
    topk_ids: np.ndarray  # [k]
    topk_probs: np.ndarray  # [k]
    topk_text: tuple[str, ...]
    entropy: float
    lens_ids: np.ndarray  # [L+1, k]
    lens_probs: np.ndarray  # [L+1, k]
    lens_text: tuple[str, ...]  # [L+1]

    def __reduce__(self):
        return (Ghost, tuple(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything captured for one position of the sequence (prompt or generated).

    Arrays are float32 (float16 when read from a trace) and read-only. L = blocks, H = query
    heads, d = model width, d_ff = MLP width, E = experts (0 without MoE), n = positions this
    token's attention covers (all of context_start .. index, live).
    """

    index: int  # position in this run: 0 = the first prompt token kept in view
    token_id: int
    text: str  # the text this token adds to the output ("" while a UTF-8 character is incomplete)
    is_prompt: bool
    context_start: int  # the first position in the model's view; > 0 once older ones slid out
    hidden: np.ndarray  # [L+1, d] residual stream: embedding output, then each block's output
    mlp: np.ndarray  # [L, d_ff] MLP activation: act(gate)*up (SwiGLU) or act(fc) (GPT-2), pre-down
    mlp_write: np.ndarray  # [L, d] what each MLP branch added to the residual stream
    experts: np.ndarray  # [L, E] each MoE block's routing weight per expert (0: not chosen)
    attn: np.ndarray  # [L, H, n] this token's attention over its newest n positions (index-n+1
    #                   .. index): every position in view live, the newest W from a trace
    attn_sink: np.ndarray  # [L, H] its attention to the first position in view (context_start)
    topk_ids: np.ndarray  # [k] next-token candidates, most likely first (model's own T=1 softmax)
    topk_probs: np.ndarray  # [k]
    topk_text: tuple[str, ...]  # [k] each candidate decoded alone (the renderer has no tokenizer)
    entropy: float  # nats, of the full next-token distribution (T=1)
    lens_ids: np.ndarray  # [L+1, k] the logit lens: what each layer would say next, top words
    #                       first (row 0 the embedding, row l block l's output; -1: not lensed)
    lens_probs: np.ndarray  # [L+1, k] their probabilities through the final norm and unembedding
    lens_text: tuple[str, ...]  # [L+1] each row's top word decoded ("" where not lensed)
    changed: tuple[str, ...] = ()  # the interventions on for this token ("mlp:10", ...)
    ghost: Ghost | None = None  # the untouched run here, while something is changed

    def __post_init__(self) -> None:
        for name in ("hidden", "mlp", "mlp_write", "experts", "attn", "attn_sink", "topk_ids",
                     "topk_probs", "lens_ids", "lens_probs"):
            getattr(self, name).flags.writeable = False

    @property
    def attn_first(self) -> int:
        """The run position of attn[..., 0]."""
        return self.index - self.attn.shape[-1] + 1

    def __reduce__(self):
        """Rebuild through __init__ when unpickled (frames come from the model process)."""
        return (Frame, tuple(getattr(self, f.name) for f in fields(self)))
