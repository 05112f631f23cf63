"""The architecture scene's layout: where every labelled part of the model goes on screen, and
the words that describe it.

Computed from an Architecture (read from the loaded model's modules and config, see
visualizer/model/inspect.py) and the target size, in pixels with the origin at the top left;
nothing here draws. Every box of a model part names the module path or config key it stands
for (`Box.source`). Four regions:

- input (left): the tokens at the bottom, the token embedding above them, and the positional
  scheme the model really uses (learned positions added there, RoPE inside attention with its θ
  per layer type, or "unknown");
- the stack (middle): one tile per block on the residual stream, the spine. A tile shows one
  heatmap per attention head (grouped by the key/value head they share), then the block's own
  steps in the order its data passes them (norms where they really are, sandwich norms
  included; "attn·qk" where attention normalises q and k; an MoE block's experts as cells),
  a badge with its attention (sliding and its window, or global) where the model has both
  kinds, and meters of ‖h‖ and of the MLP's write. Past ROWS_MAX tiles the stack folds into
  columns: the spine runs up one column and on at the foot of the next;
- output (top right): the final norm, the unembedding and the softmax over the vocabulary;
- anatomy (bottom right): the block with the largest update for this token, drawn large, with
  every step spelled out by `up_close` (one line per module or config key);
- under them the model's notes, and a caption: the prompt, and the answer's newest words in
  type that can be read across a room (a kiosk's visitors watch this scene too). All of it in
  the 5 % safe area (layers/room.py); the chrome's HUD, notices and hint: `side_slot`.
"""

import math
from dataclasses import dataclass

from visualizer.architecture import UNKNOWN, Architecture, Block, Step, ranges
from visualizer.render.layers.room import SAFE  # the graphics-safe area's margin

MIN_TILE, MAX_TILE = 7.0, 14.0  # a block tile's least and most height, hundredths of the height
TOP, CAPTION, PARTS = 13.5, 9.6, 10.5  # of the height, %: regions' top, caption, up-close parts


@dataclass(frozen=True)
class Box:
    kind: str  # see the layout functions below for the kinds
    x: float
    y: float
    w: float
    h: float
    label: str = ""
    block: int = -1  # -1: not tied to a block
    head: int = -1  # a head, or an MoE block's expert
    group: int = -1  # the key/value head a query head reads
    source: str = ""  # the module path or config key this box stands for

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


def _bottom(arch: Architecture, u: float) -> float:  # the regions' foot: over the caption
    return (100 - 100 * SAFE - CAPTION - (4.2 if arch.notes else 0.4)) * u


def side_slot(arch: Architecture, size: tuple[int, int]) -> Box:
    """The anatomy's notes, at the foot of the right column (see `_anatomy`)."""
    w, u = size[0], size[1] / 100
    y = (TOP + 31 + 9.5 + PARTS + 1.2) * u
    return Box("notes", 0.655 * w, y, (1 - SAFE - 0.655) * w, _bottom(arch, u) - y)


def layout(arch: Architecture, size: tuple[int, int]) -> Diagram:
    w, h = size
    u = h / 100
    left, right = SAFE * w, (1 - SAFE) * w
    top, bottom = TOP * u, _bottom(arch, u)  # the regions; the notes and the caption below
    boxes: list[Box] = []
    boxes += _input(arch, left, top, 0.14 * w, bottom - top, u)
    stack = Box("stack", 0.205 * w, top, 0.43 * w, bottom - top, "the residual stream")
    columns = math.ceil(arch.blocks / max(1, int(stack.h // (MIN_TILE * u))))
    boxes.append(stack)
    boxes += _stack(arch, stack, columns, u)
    boxes += _output(arch, Box("output", 0.655 * w, top, right - 0.655 * w, 28 * u), u)
    boxes += _anatomy(arch, Box("anatomy", 0.655 * w, top + 31 * u, right - 0.655 * w,
                                bottom - top - 31 * u), u)  # fmt: skip
    boxes.append(Box("footer", left, bottom + 0.4 * u, right - left, 3.4 * u,
                     "; ".join(arch.notes), source="notes"))  # two lines of notes  # fmt: skip
    boxes.append(Box("caption", left, (100 - 100 * SAFE - CAPTION) * u, right - left,
                     CAPTION * u, "the prompt and the answer"))  # fmt: skip
    return Diagram(arch, size, u, columns, tuple(boxes))


# --- words ------------------------------------------------------------------------------------


def _n(value) -> str:
    return UNKNOWN if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _theta(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _blocks(ids) -> str:
    return f"block {ids[0]}" if len(ids) == 1 else f"blocks {ranges(list(ids))}"


def rope_where(arch: Architecture) -> str:
    """Which blocks rotate q and k, as each block's own attention showed it: "inside every
    attention", or the blocks that do, those that do not, and those where it is unknown."""
    yes, no, unknown = arch.rope_blocks
    if yes and not no and not unknown:
        return "inside every attention"
    parts = [f"in {_blocks(yes)}"] if yes else []
    if no:
        parts.append(f"not in {_blocks(no)}")
    if unknown and not parts:
        return "(in which blocks: unknown)"
    if unknown:
        parts.append(f"unknown in {_blocks(unknown)}")
    return "; ".join(parts)


def positions_label(arch: Architecture) -> str:
    if arch.positions == "learned":
        return f"+ learned positions {_n(arch.context)} × {_n(arch.width)}"
    if arch.positions == "RoPE":
        where = rope_where(arch)
        if not arch.rope_theta:
            return f"RoPE, θ unknown: positions rotate q and k {where}"
        if "all" in arch.rope_theta:
            return f"RoPE θ={_theta(arch.rope_theta['all'])}: positions rotate q and k {where}"
        names = {"full_attention": "global", "sliding_attention": "sliding"}
        per = ", ".join(f"θ={_theta(t)} in {names.get(k, k)} blocks"
                        for k, t in sorted(arch.rope_theta.items()))  # fmt: skip
        if where == "inside every attention":
            return f"RoPE inside attention: {per}"
        return f"RoPE: {per}; q and k rotated {where}"
    return "positions: unknown (no rotary module or position embedding seen)"


def _rope_short(arch: Architecture) -> str:
    yes, no, unknown = arch.rope_blocks
    if unknown:
        return "RoPE (which blocks: unknown)" if not yes and not no else (
            f"RoPE in {len(yes)} of {arch.blocks} blocks, {len(unknown)} unknown")  # fmt: skip
    return "RoPE" if not no else f"RoPE in {len(yes)} of {arch.blocks} blocks"


def norm_short(step: Step) -> str:
    return {"RMSNorm": "RMS", "LayerNorm": "LN"}.get(step.label, "norm?")


def mlp_short(block: Block) -> str:
    m = block.mlp
    if m.experts:
        return f"MoE {m.experts}"
    if m.gated is None and m.activation is None:
        return "MLP?"
    return m.name


def facts_line(arch: Architecture) -> str:
    """The line under the title: what the whole model is, in a dozen words."""
    first = arch.first
    kv = (", K/V heads unknown" if first.kv_heads is None else
          f", {first.kv_heads} K/V" if arch.grouped else "")  # fmt: skip
    heads = f"{_n(first.heads)} heads{kv}"
    norms = [s.label for s in first.norms]
    norm = (f"{norms[0]} ×{len(norms)} a block" if norms and len(set(norms)) == 1
            else " + ".join(norms) if norms else "norms unknown")  # fmt: skip
    positions = {"learned": "learned positions", None: "positions unknown",
                 "RoPE": _rope_short(arch)}.get(arch.positions, arch.positions)  # fmt: skip
    parts = [_n(arch.family), f"{arch.blocks} blocks", f"width {_n(arch.width)}", heads, norm,
             positions, first.mlp.name]  # fmt: skip
    if arch.sliding:
        window = arch.block[arch.sliding[0]].window
        parts.append(f"{len(arch.sliding)} of {arch.blocks} blocks sliding (window {window})")
    if arch.moe:
        parts.append(f"experts in {len(arch.moe)} of {arch.blocks} blocks")
    return " · ".join(parts)


def mlp_steps(arch: Architecture, block: Block) -> str:
    """The MLP's stages with their shapes, named by the model's own modules."""
    m, d, f = block.mlp, _n(arch.width), _n(block.mlp.width)
    names = [p.rsplit(".", 1)[-1] for p in m.projections]
    act = m.activation or "activation unknown"
    if m.experts:
        shared = f", plus shared {', '.join(s.rsplit('.', 1)[-1] for s in m.shared)}" \
            if m.shared else ""
        return (f"router picks {m.active} of {m.experts} experts per token ({names[0]}: "
                f"{'gated ' if m.gated else ''}{act}, {d}→{f}→{d} each){shared}")
    if m.gated and len(names) == 3:
        return (f"{names[0]} {d}→{f}, {names[1]} {d}→{f}, {act}({names[0]}) × {names[1]}, "
                f"{names[2]} {f}→{d}")
    if m.gated and len(names) == 2:
        return f"{names[0]} {d}→2×{f}, {act}(gate half) × up half, {names[1]} {f}→{d}"
    if m.gated is False and len(names) == 2:
        return f"{names[0]} {d}→{f}, {act}, {names[1]} {f}→{d}"
    return f"{', '.join(names) or 'projections unknown'} ({act})"


def up_close(arch: Architecture, index: int) -> list[tuple[str, str]]:
    """The up-close text for one block: (line, the modules or config keys it reads from)."""
    b = arch.block[index]
    src = b.sources
    attn = next((s for s in b.steps if s.kind == "attention"), None)
    mlp = next((s for s in b.steps if s.kind == "mlp"), None)
    before = [s for s in b.steps[: b.steps.index(attn)] if s.kind == "norm"] if attn else []
    pre = " → ".join(f"{s.label} ({s.source.rsplit('.', 1)[-1]})" for s in before)
    bias = f" (bias on {', '.join(b.attn_bias)})" if b.attn_bias else ""
    lines = [(f"{pre + ' → ' if pre else ''}attention ({attn.source if attn else UNKNOWN}): "
              f"q, k, v {_n(arch.width)} → {_n(b.heads)} × {_n(b.head_dim)}{bias}",
              f"{src.get('heads', '')}; {src.get('attn_bias', '')}")]  # fmt: skip
    how = []
    if b.rope:
        theta = arch.theta_of(index) if arch.positions == "RoPE" else None
        how.append(f"RoPE (θ={_theta(theta)}) rotates q and k" if theta else "RoPE rotates q, k")
    elif b.rope is False and arch.positions == "RoPE":
        how.append("no RoPE in this block: q and k are not rotated")
    elif b.rope is None and arch.positions == "RoPE":
        how.append("whether RoPE rotates q and k here: unknown")
    if b.qk_norm:
        how.append(f"q, k normed: {b.qk_norm}")
    scale = f"{b.scale:.4g}" if b.scale else "?"
    cap = f", softcapped at {b.softcap:g}" if b.softcap else ""
    window = f"; sees the last {b.window} positions" if b.attention == "sliding" else (
        "; sees every position" if b.attention == "global" else "")  # fmt: skip
    how.append(f"softmax(q·kᵀ × {scale}{cap}) · v{window}")
    lines.append(("; ".join(how), "; ".join(filter(None, (
        src.get("rope", "") if arch.positions == "RoPE" or b.rope else "",
        arch.sources.get("rope_theta", "") if b.rope else "",
        src.get("qk_norm", "") if b.qk_norm else "", src.get("scale", ""),
        src.get("window", ""))))))  # fmt: skip
    if b.kv_heads is None:  # not read from the model nor its config: never assumed
        lines.append((f"{_n(b.heads)} query heads; key/value heads: unknown",
                      src.get("kv_heads", "") or "neither the modules nor the config say"))
    elif b.heads and b.kv_heads < b.heads:
        lines.append((f"{b.heads} query heads share {b.kv_heads} key/value heads "
                       f"({b.heads // b.kv_heads} each)", src.get("kv_heads", "")))  # fmt: skip
    else:
        lines.append((f"{_n(b.heads)} heads, each with its own keys and values",
                      src.get("kv_heads", "")))  # fmt: skip
    after = ([s for s in b.steps[b.steps.index(attn) + 1 :] if s.kind == "norm"
              and s.where.startswith("after attention")] if attn else [])  # fmt: skip
    post = "".join(f" → {s.label} ({s.source.rsplit('.', 1)[-1]})" for s in after)
    where = ", ".join(s.source for s in after) or (attn.source if attn else "")
    lines.append((f"heads concatenated → output projection{post} → ⊕ the residual stream",
                  where))
    if b.parallel:
        lines.append(("the MLP reads the block's input, beside attention (parallel)",
                      src.get("parallel", "")))  # fmt: skip
    pre_mlp = [s for s in b.norms if s.where == "before the MLP"]
    post_mlp = [s for s in b.norms if s.where.startswith("after the MLP")]
    head = " → ".join(f"{s.label} ({s.source.rsplit('.', 1)[-1]})" for s in pre_mlp)
    tail = "".join(f" → {s.label} ({s.source.rsplit('.', 1)[-1]})" for s in post_mlp)
    lines.append((f"{head + ' → ' if head else ''}{b.mlp.name} ({mlp.source if mlp else UNKNOWN})"
                  f": {mlp_steps(arch, b)}{tail} → ⊕",
                  b.mlp.sources.get("gated") or b.mlp.sources.get("experts", "")))  # fmt: skip
    if not b.steps:
        lines.append(("where its norms sit is unknown (read from a config alone)", "notes"))
    return lines


# --- regions ----------------------------------------------------------------------------------


def _input(arch: Architecture, x: float, y: float, w: float, h: float, u: float) -> list[Box]:
    tokens = Box("tokens", x, y + h - 13 * u, w, 13 * u, "tokens in")
    scale = (f", × {arch.embed_scale:.4g}" if arch.embed_scale not in (None, 1.0) else
             ", scale unknown" if arch.embed_scale is None else "")  # fmt: skip
    embedding = Box("embedding", x, tokens.y - 15 * u, w, 10 * u,
                    f"token embedding {_n(arch.vocab)} × {_n(arch.width)}{scale}",
                    source=arch.embedding or "")  # fmt: skip
    positions = Box("positions", x, embedding.y - 13 * u, w, 10 * u, positions_label(arch),
                    source=arch.sources.get("positions", ""))  # fmt: skip
    legend = Box("legend", x, y, w, positions.y - y - 3 * u, "how to read it")
    return [Box("input", x, y, w, h, "input"), legend, tokens, embedding, positions]


def _stack(arch: Architecture, stack: Box, columns: int, u: float) -> list[Box]:
    rows = math.ceil(arch.blocks / columns)
    gap = 1.2 * u
    tile_w = (stack.w - gap * (columns - 1)) / columns
    tile_h = min(stack.h / rows, MAX_TILE * u)
    blocks_path = arch.sources.get("blocks", "").split(" ")[0]
    boxes = []
    for block in range(arch.blocks):
        column, row = divmod(block, rows)
        x = stack.x + column * (tile_w + gap)
        y = stack.y + stack.h - (row + 1) * tile_h  # upward from the foot of the column
        tile = Box("block", x, y, tile_w, tile_h - 0.6 * u, f"{block}", block,
                   source=f"{blocks_path}.{block}" if blocks_path else "")  # fmt: skip
        boxes += _tile(arch, block, tile, u)
    return boxes


def _parts(arch: Architecture, box: Box, u: float, block: int, prefix: str) -> list[Box]:
    """A block's parts inside `box`: its attention heads on top, one heatmap each, grouped by
    the key/value head they share; below them its steps in the order its data passes them."""
    spec = arch.block[block]
    heads, kv = spec.heads or 1, spec.kv_heads or 1  # K/V heads unknown: no groups drawn
    heads_h = 0.55 * box.h
    group_gap = 0.12 * heads_h
    side = min(heads_h, (box.w - group_gap * (kv - 1)) / heads)
    attn_source = next((s.source for s in spec.steps if s.kind == "attention"), "")
    boxes = []
    for head in range(heads):
        group = head // max(1, heads // kv) if spec.kv_heads else -1
        x = box.x + head * side + max(group, 0) * group_gap
        boxes.append(Box(prefix + "head", x, box.y, side * 0.9, side * 0.9, f"head {head}",
                         block, head, group, attn_source))  # fmt: skip
    share = {"norm": 1.0, "attention": 1.0, "add": 0.6, "mlp": 1.8}
    steps = spec.steps or (Step("unknown", "steps unknown", ""),)
    gap = 0.3 * u
    unit_w = (box.w - gap * (len(steps) - 1)) / sum(share.get(s.kind, 4.0) for s in steps)
    x, y, h = box.x, box.y + heads_h + 0.4 * u, box.h - heads_h - 0.4 * u
    for step in steps:
        attention = "attn·qk" if spec.qk_norm else "attn"
        label = {"norm": norm_short(step), "add": "+", "mlp": mlp_short(spec),
                 "attention": attention}.get(step.kind, step.label)  # fmt: skip
        width = share.get(step.kind, 4.0) * unit_w
        chip = Box(prefix + step.kind, x, y, width, h, label, block, source=step.source)
        boxes.append(chip)
        if step.kind == "mlp" and spec.mlp.experts:
            boxes += _experts(chip, spec.mlp.experts, block, prefix)
        x += width + gap
    return boxes


def _experts(chip: Box, experts: int, block: int, prefix: str) -> list[Box]:
    """An MoE block's experts as a row of cells under its chip's label, lit by routing."""
    columns = min(experts, 16)
    rows = math.ceil(experts / columns)
    cell_w = chip.w / columns
    cell_h = 0.45 * chip.h / rows
    top = chip.y + 0.52 * chip.h
    return [Box(prefix + "expert", chip.x + (e % columns) * cell_w + 0.1 * cell_w,
                top + (e // columns) * cell_h, 0.8 * cell_w, 0.8 * cell_h, f"expert {e}",
                block, e, source=chip.source)
            for e in range(experts)]  # fmt: skip


def _tile(arch: Architecture, block: int, tile: Box, u: float) -> list[Box]:
    label_w = 3.0 * u
    meter_h = 0.45 * u
    inner = Box("parts", tile.x + label_w, tile.y + 0.5 * u, tile.w - label_w - 0.5 * u,
                tile.h - 2 * meter_h - 1.6 * u)  # fmt: skip
    spec = arch.block[block]
    meters = [
        Box("meter", inner.x, tile.y + tile.h - 2 * meter_h - 0.6 * u, inner.w, meter_h,
            "residual", block, source=tile.source),
        Box("meter", inner.x, tile.y + tile.h - meter_h - 0.4 * u, inner.w, meter_h, "mlp",
            block, source=next((s.source for s in spec.steps if s.kind == "mlp"), "")),
    ]  # fmt: skip
    badge = []
    if arch.sliding:  # the model has both kinds: say which this is
        text = f"window {spec.window}" if spec.attention == "sliding" else "global"
        badge = [Box("badge", tile.x + tile.w - 9 * u, tile.y + 0.2 * u, 8.6 * u, 1.8 * u,
                     text, block, source=spec.sources.get("attention", ""))]  # fmt: skip
    return [tile, *_parts(arch, inner, u, block, ""), *meters, *badge]


def _output(arch: Architecture, region: Box, u: float) -> list[Box]:
    x, w = region.x, region.w
    final = Box("final_norm", x, region.y, w * 0.48, 5 * u,
                f"final {arch.final_norm or 'norm (kind unknown)'}",
                source=arch.sources.get("final_norm", ""))  # fmt: skip
    tied = {True: " (tied to the embedding)", False: "", None: " (tied: unknown)"}[arch.tied]
    unembed = Box("unembedding", x + w * 0.52, region.y, w * 0.48, 5 * u,
                  f"unembedding {_n(arch.width)} × {_n(arch.vocab)}{tied}",
                  source=arch.sources.get("tied", ""))  # fmt: skip
    cap = f", logits softcapped at {arch.final_softcap:g}" if arch.final_softcap else ""
    softmax = Box("softmax", x, region.y + 7 * u, w, region.h - 7 * u,
                  f"softmax over {_n(arch.vocab)} tokens{cap}: the next token",
                  source=arch.sources.get("vocab", ""))  # fmt: skip
    return [region, final, unembed, softmax]


def _anatomy(arch: Architecture, region: Box, u: float) -> list[Box]:
    """The focus block, large: its steps in a row, then what each one does, in words. Every
    block's parts are laid out here (blocks may differ: dense and MoE, sliding and global);
    the scene draws the focus block's, with the words of `up_close`."""
    parts = Box("parts", region.x, region.y + 9.5 * u, region.w, PARTS * u)
    boxes = [region]
    for block in range(arch.blocks):
        boxes += _parts(arch, parts, u, block, "detail_")
    y = parts.y + parts.h + 1.2 * u
    boxes.append(Box("notes", region.x, y, region.w, region.y + region.h - y))
    return boxes
