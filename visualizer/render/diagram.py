"""The architecture scene's layout: where every labelled part of the model goes on screen.

Computed from an Architecture (so from the model's config) and the target size, in pixels with
the origin at the top left; nothing here draws. Four regions:

- input (left): the tokens at the bottom, the token embedding above them, and the positional
  scheme the model really uses (learned positions added there, or RoPE inside attention);
- the stack (middle): one tile per block on the residual stream, the spine. A tile shows the
  block's steps in order: norm → one heatmap per attention head (grouped by the key/value head
  they share), then norm → attention → ⊕ → norm → MLP → ⊕, and meters of the residual stream
  and MLP activity. Past
  ROWS_MAX tiles the stack folds into columns: the spine runs up one column and on at the foot
  of the next, so a 30-block model keeps every block readable;
- output (top right): the final norm, the unembedding and the softmax over the vocabulary;
- anatomy (bottom right): the block that wrote most for this token, drawn large with every
  step spelled out.
"""

import math
from dataclasses import dataclass

from visualizer.architecture import Architecture

MIN_TILE = 7.5  # a block tile's least height, in hundredths of the screen height
MAX_TILE = 14.0


@dataclass(frozen=True)
class Box:
    kind: str  # see the layout functions below for the kinds
    x: float
    y: float
    w: float
    h: float
    label: str = ""
    block: int = -1  # -1: not tied to a block (or, in the anatomy, the focus block)
    head: int = -1
    group: int = -1  # the key/value head a query head reads

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@dataclass(frozen=True)
class Diagram:
    arch: Architecture
    size: tuple[int, int]
    unit: float  # a hundredth of the height, in pixels: text sizes are in these
    columns: int  # the stack's columns (more than one once it folds)
    boxes: tuple[Box, ...]

    def of(self, kind: str) -> list[Box]:
        return [box for box in self.boxes if box.kind == kind]

    def region(self, kind: str) -> Box:
        return next(box for box in self.boxes if box.kind == kind)


def layout(arch: Architecture, size: tuple[int, int]) -> Diagram:
    w, h = size
    u = h / 100
    boxes: list[Box] = []
    boxes += _input(arch, 2 * u, 10 * u, 0.15 * w, 86 * u, u)
    stack = Box("stack", 0.19 * w, 10 * u, 0.44 * w, 86 * u, "the residual stream")
    columns = math.ceil(arch.blocks / max(1, int(stack.h // (MIN_TILE * u))))
    boxes.append(stack)
    boxes += _stack(arch, stack, columns, u)
    boxes += _output(arch, Box("output", 0.66 * w, 10 * u, 0.32 * w, 30 * u), u)
    boxes += _anatomy(arch, Box("anatomy", 0.66 * w, 44 * u, 0.32 * w, 52 * u), u)
    return Diagram(arch, size, u, columns, tuple(boxes))


def _input(arch: Architecture, x: float, y: float, w: float, h: float, u: float) -> list[Box]:
    tokens = Box("tokens", x, y + h - 14 * u, w, 14 * u, "tokens in")
    embedding = Box("embedding", x, tokens.y - 16 * u, w, 12 * u,
                    f"token embedding {arch.vocab:,} × {arch.width}")  # fmt: skip
    if arch.positions == "learned":
        label = f"+ learned positions {arch.context:,} × {arch.width}"
    else:
        label = f"RoPE θ={arch.rope_theta:g}: positions rotate q and k inside every attention"
    positions = Box("positions", x, embedding.y - 16 * u, w, 12 * u, label)
    legend = Box("legend", x, y, w, positions.y - y - 3 * u, "how to read it")
    return [Box("input", x, y, w, h, "input"), legend, tokens, embedding, positions]


def _stack(arch: Architecture, stack: Box, columns: int, u: float) -> list[Box]:
    rows = math.ceil(arch.blocks / columns)
    gap = 1.2 * u
    tile_w = (stack.w - gap * (columns - 1)) / columns
    tile_h = min(stack.h / rows, MAX_TILE * u)
    boxes = []
    for block in range(arch.blocks):
        column, row = divmod(block, rows)
        x = stack.x + column * (tile_w + gap)
        y = stack.y + stack.h - (row + 1) * tile_h  # upward from the foot of the column
        tile = Box("block", x, y, tile_w, tile_h - 0.6 * u, f"{block}", block)
        boxes += _tile(arch, block, tile, u)
    return boxes


def _parts(arch: Architecture, box: Box, u: float, block: int, prefix: str) -> list[Box]:
    """A block's parts inside `box`: its attention heads on top, one heatmap each, grouped by
    the key/value head they share; below them its steps in order: norm → attention → ⊕ → norm →
    MLP → ⊕ ("attn" stands for the heads above)."""
    heads_h = 0.55 * box.h
    group_gap = 0.12 * heads_h
    side = min(heads_h, (box.w - group_gap * (arch.kv_heads - 1)) / arch.heads)
    boxes = []
    for head in range(arch.heads):
        group = arch.kv_group(head)
        x = box.x + head * side + group * group_gap
        boxes.append(Box(prefix + "head", x, box.y, side * 0.9, side * 0.9, f"head {head}",
                         block, head, group))  # fmt: skip
    short = "RMS" if arch.norm == "RMSNorm" else "LN"
    steps = (("norm", short, 1.0), ("attention", "attn", 1.0), ("add", "+", 0.6),
             ("norm", short, 1.0), ("mlp", arch.mlp, 1.8), ("add", "+", 0.6))  # fmt: skip
    gap = 0.3 * u
    unit_w = (box.w - gap * (len(steps) - 1)) / sum(share for *_, share in steps)
    x, y, h = box.x, box.y + heads_h + 0.4 * u, box.h - heads_h - 0.4 * u
    for kind, label, share in steps:
        boxes.append(Box(prefix + kind, x, y, share * unit_w, h, label, block))
        x += share * unit_w + gap
    return boxes


def _tile(arch: Architecture, block: int, tile: Box, u: float) -> list[Box]:
    label_w = 3.0 * u
    meter_h = 0.45 * u
    inner = Box("parts", tile.x + label_w, tile.y + 0.5 * u, tile.w - label_w - 0.5 * u,
                tile.h - 2 * meter_h - 1.6 * u)  # fmt: skip
    meters = [
        Box("meter", inner.x, tile.y + tile.h - 2 * meter_h - 0.6 * u, inner.w, meter_h,
            "residual", block),
        Box("meter", inner.x, tile.y + tile.h - meter_h - 0.4 * u, inner.w, meter_h, "mlp", block),
    ]  # fmt: skip
    return [tile, *_parts(arch, inner, u, block, ""), *meters]


def _output(arch: Architecture, region: Box, u: float) -> list[Box]:
    x, w = region.x, region.w
    final = Box("final_norm", x, region.y, w * 0.48, 5 * u, f"final {arch.norm}")
    tied = " (tied to the embedding)" if arch.tied else ""
    unembed = Box("unembedding", x + w * 0.52, region.y, w * 0.48, 5 * u,
                  f"unembedding {arch.width} × {arch.vocab:,}{tied}")  # fmt: skip
    softmax = Box("softmax", x, region.y + 7 * u, w, region.h - 7 * u,
                  f"softmax over {arch.vocab:,} tokens: the next token")  # fmt: skip
    return [region, final, unembed, softmax]


def _anatomy(arch: Architecture, region: Box, u: float) -> list[Box]:
    """The focus block, large: its steps in a row, then what each one does, in words."""
    parts = Box("parts", region.x, region.y + 7 * u, region.w, 17 * u)
    boxes = [region, *_parts(arch, parts, u, -1, "detail_")]
    kv = f"{arch.heads} query heads share {arch.kv_heads} key/value heads ({arch.group_size} each)"
    attention = [
        f"{arch.norm} → attention: q, k, v projections {arch.width} → {arch.heads} × "
        f"{arch.head_dim}" + (" (with bias)" if arch.qkv_bias else ""),
        ("RoPE rotates q and k by position; " if arch.positions == "RoPE" else "")
        + f"softmax(q·kᵀ / √{arch.head_dim}) · v",
        kv if arch.grouped else f"{arch.heads} heads, each with its own keys and values",
        "heads concatenated → output projection → added to the residual stream (⊕)",
        f"{arch.norm} → {arch.mlp}: " + " → ".join(arch.mlp_steps) + " → ⊕",
    ]
    y = parts.y + parts.h + 1.5 * u
    for line in attention:
        boxes.append(Box("note", region.x, y, region.w, 3.4 * u, line))
        y += 3.8 * u
    return boxes
