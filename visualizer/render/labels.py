"""A panel's labels in the architecture scene, from its full one (diagram.py's) to the
shortest: where a venue's smallest type (layers/room.py) cannot fit the full label into its
box, the scene draws the first that fits, and leaves the panel out where none does, so that
no box is drawn that does not say what it is. Every shorter label keeps only words and numbers
its full one says (a shape, a θ, a norm's kind, tied or not): shorter, never different.
"""

from visualizer.architecture import Architecture
from visualizer.render.diagram import Box, _n, _rope_short, _theta


def labels(arch: Architecture, box: Box) -> tuple[str, ...]:
    """`box`'s labels, most said first; its own label alone for a box with no shorter one."""
    shorter = {"embedding": _embedding, "positions": _positions, "final_norm": _final,
               "unembedding": _unembedding}.get(box.kind)  # fmt: skip
    said = [box.label, *(shorter(arch) if shorter else ())]
    return tuple(dict.fromkeys(text for text in said if text))  # in order, once each


def _embedding(arch: Architecture) -> list[str]:
    shape = f"{_n(arch.vocab)} × {_n(arch.width)}"
    scale = f" × {arch.embed_scale:.4g}" if arch.embed_scale not in (None, 1.0) else ""
    return [f"embedding {shape}{scale}", f"embedding {shape}", "token embedding", "embedding"]


def _positions(arch: Architecture) -> list[str]:
    if arch.positions == "learned":
        return [f"learned positions {_n(arch.context)} × {_n(arch.width)}", "learned positions"]
    if arch.positions != "RoPE":
        return ["positions unknown"]
    short = _rope_short(arch)  # "RoPE", or where it rotates as the facts' line says it
    theta = arch.rope_theta.get("all") if arch.rope_theta else None
    where = short.removeprefix("RoPE")
    return [f"RoPE θ={_theta(theta)}{where}" if theta else short, short]


def _final(arch: Architecture) -> list[str]:
    return [f"final {arch.final_norm}" if arch.final_norm else "final norm", "final norm"]


def _unembedding(arch: Architecture) -> list[str]:
    shape = f"unembedding {_n(arch.width)} × {_n(arch.vocab)}"
    tied = {True: " (tied)", False: "", None: " (tied?)"}[arch.tied]
    return [f"{shape}{tied}", shape, f"unembedding{tied}", "unembedding"]
