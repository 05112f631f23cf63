"""The architecture scene: the diagram of render/diagram.py, drawn with the model's live state.

Boxes, meters and words go through the Painter (shaders/ui.glsl); every attention head's
heatmap is one instance of shaders/heatmap.glsl, reading a single atlas of the Anatomy's head
maps, uploaded once per token.
"""

import moderngl
import numpy as np

from visualizer.anatomy import COLUMNS, ROWS, Anatomy
from visualizer.config import rgb
from visualizer.features import SceneState, percent
from visualizer.render.diagram import Box, Diagram, facts_line, layout, up_close
from visualizer.render.layers import Instances
from visualizer.render.layers.layer import Kit, Layer, LayerInput, Overlay
from visualizer.render.layers.panels import (
    RED,
    _candidate_label,
    _visible,
    before_number,
    quoted_token,
    wrap_tokens,
)
from visualizer.render.layers.text import Fonts


def legend(norms: np.ndarray) -> tuple[str, ...]:
    """How to read the scene, with this token's own numbers."""
    low, high = (f"{norms.min():.3g}", f"{norms.max():.3g}") if len(norms) else ("?", "?")
    return (
        "Each tile is a block, from the bottom up; the residual stream, the spine, runs up "
        "each column and on at the foot of the next.",
        f"Squares: a heatmap per head, grouped by shared K/V head. Rows: the last {ROWS} "
        f"tokens; columns: the last {COLUMNS} positions; brightness: √weight.",
        f"Blue: ‖h_out‖, the stream after the block, log scale {low}–{high}. Pink and the "
        "MLP's glow: its write ÷ ‖h_out‖. Frame glow: ‖Δh‖ ÷ ‖h_in‖, the block's update over "
        "the stream it read.",
    )


def focus_numbers(anatomy: Anatomy, block: int) -> str:
    """The up-close block's numbers, each ‖h‖ named by the one it is: the update over the
    stream the block read (h_in), that stream's and the output's norms, the MLP's share of the
    output."""
    a = anatomy
    return (f"‖Δh‖ ÷ ‖h_in‖ = {a.updates[block]:.3g}; ‖h_in‖ = {a.norms[block]:.4g}, "
            f"‖h_out‖ = {a.norms[block + 1]:.4g}; MLP wrote {a.shares[block]:.1%} of ‖h_out‖")


def wrap(text: str, fonts: Fonts, size: int, width: float) -> list[str]:
    """Words into lines no wider than `width` pixels (a long word gets a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and fonts.width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


class ArchitectureView(Layer):
    stage = "architecture"

    def __init__(self, kit: Kit) -> None:
        shaders, look = kit.shaders, kit.look
        self.ctx, self.painter, self.look = shaders.ctx, kit.painter, look
        self._diagram: Diagram | None = None  # laid out for the model and size it was drawn at
        self.program = shaders.get("heatmap")
        self._heads = Instances(shaders, "heatmap", [], "4f 2f/i", "in_rect", "in_tile")
        self._atlas: moderngl.Texture | None = None
        self._maps_of = -1  # the newest frame whose head maps are in the atlas
        c = {name: rgb(getattr(look, name)) for name in
             ("background", "cold", "warm", "hot", "text", "accent")}  # fmt: skip
        self.colours = c
        self.ink = (*c["text"], 1.0)
        self.dim = (*c["text"], 0.6)
        self.accent = (*c["accent"], 1.0)

    def update(self, frame: LayerInput) -> None:
        """The diagram, laid out again when the model or the size changes."""
        arch = frame.overlay.architecture
        if self._diagram is None or (self._diagram.arch, self._diagram.size) != (arch, frame.size):
            self._diagram = layout(arch, frame.size)

    def draw(self, frame: LayerInput) -> None:
        """Onto the bound framebuffer, with the overlay's scene mix as its alpha (< 1 while the
        scenes crossfade)."""
        d, scene, o, alpha = self._diagram, frame.scene, frame.overlay, frame.overlay.scene_mix
        p, a = self.painter, scene.anatomy
        p.begin(d.size)
        if alpha < 1.0:  # crossfading over the web; otherwise the frame is cleared to it
            p.rect(0, 0, *d.size, (*self.colours["background"], alpha))
        self._title(d, o, alpha)
        if scene.rows == 0 or len(a.residual) != d.arch.blocks:
            p.flush()
            return
        focus = a.focus
        self._caption(d, scene, o, alpha)
        self._input(d, scene, alpha)
        self._stack(d, scene, focus, alpha)
        self._output(d, scene, alpha)
        self._anatomy(d, scene, focus, alpha)
        with p.after_next_flush():  # over the heatmaps
            self._marks(d, scene, alpha, o.lens)
        p.flush()  # the boxes under the heatmaps
        self._heatmaps(d, scene, focus, alpha)
        p.flush()

    # --- parts --------------------------------------------------------------------------

    def _fade(self, colour: tuple, alpha: float) -> tuple:
        return (*colour[:3], colour[3] * alpha)

    def _label(self, box: Box, text: str, size: int, alpha: float, colour=None,
               anchor: str = "center") -> None:  # fmt: skip
        """`text` wrapped to the box, centred in it (or from its left edge)."""
        lines = wrap(text, self.painter.fonts, size, box.w - 0.6 * size)
        step = size * 1.25
        y = box.y + (box.h - step * len(lines)) / 2
        x = box.x + box.w / 2 if anchor == "center" else box.x + 0.4 * size
        for line in lines:
            self.painter.text(line, x, y, size, self._fade(colour or self.ink, alpha),
                              anchor=anchor)  # fmt: skip
            y += step

    def _panel(self, box: Box, alpha: float, glow: float = 0.0) -> None:
        """A box: a faint fill and a hairline frame, brighter with `glow` (0..1)."""
        p, cold, warm = self.painter, self.colours["cold"], self.colours["warm"]
        fill = tuple(c * (0.18 + 0.5 * glow) for c in cold)
        p.rect(box.x, box.y, box.w, box.h, (*fill, 0.85 * alpha))
        edge = (*tuple(cw * glow + cc * (1 - glow) for cw, cc in zip(warm, cold, strict=True)),
                (0.5 + 0.5 * glow) * alpha)  # fmt: skip
        t = max(1.0, box.h / 60)
        for x, y, w, h in ((box.x, box.y, box.w, t), (box.x, box.y + box.h - t, box.w, t),
                           (box.x, box.y, t, box.h), (box.x + box.w - t, box.y, t, box.h)):
            p.rect(x, y, w, h, edge)  # fmt: skip

    def _title(self, d: Diagram, o: Overlay, alpha: float) -> None:
        u, arch = d.unit, d.arch
        name = arch.name or o.model or "the model"
        self.painter.text(f"Inside {name}", 2 * u, 1.8 * u, round(3.2 * u),
                          self._fade(self.ink, alpha), bold=True)  # fmt: skip
        self.painter.text(facts_line(arch), 2 * u, 5.6 * u, round(1.9 * u),
                          self._fade(self.dim, alpha))  # fmt: skip
        footer = d.region("footer")
        if footer.label:
            self._label(footer, f"Note: {footer.label}", round(1.35 * u), alpha, self.dim,
                        anchor="left")  # fmt: skip

    def _caption(self, d: Diagram, scene: SceneState, o: Overlay, alpha: float) -> None:
        """The prompt, and the answer's newest line in large type with the current token lit:
        what a visitor reads from across the room while the diagram works."""
        box, u, fonts = d.region("caption"), d.unit, self.painter.fonts
        small, large = round(2.2 * u), round(4.4 * u)
        if o.prompt:
            prompt = _visible(o.prompt)
            while len(prompt) > 1 and fonts.width(f"› {prompt}…", small) > box.w:
                prompt = prompt[: int(len(prompt) * 0.9)]
            ellipsis = "…" if prompt != _visible(o.prompt) else ""
            self.painter.text(f"› {prompt}{ellipsis}", box.x, box.y, small,
                              self._fade(self.dim, alpha))  # fmt: skip
        pieces: list[tuple[str, int]] = []
        for line in wrap_tokens(list(scene.tokens)[-200:], fonts, large, float("inf")):
            for n, (text, index) in enumerate(line):  # a new line reads as a space here
                pieces.append((f" {text.lstrip()}" if n == 0 and pieces else text, index))
        shown: list[tuple[str, int]] = []
        room = box.w - fonts.width("…", large)
        for text, index in reversed(pieces):  # the newest words that fit on one line
            room -= fonts.width(text, large)
            if room < 0:
                break
            shown.insert(0, (text, index))
        x, y = box.x, box.y + box.h - large * 1.2
        if len(shown) < len(pieces):
            self.painter.text("…", x, y, large, self._fade(self.dim, alpha))
            x += fonts.width("…", large)
        for text, index in shown:
            current = index == scene.newest
            colour = self.accent if current else self.ink
            self.painter.text(text, x, y, large, self._fade(colour, alpha), bold=current)
            x += fonts.width(text, large)

    def _input(self, d: Diagram, scene: SceneState, alpha: float) -> None:
        u, size = d.unit, round(1.7 * d.unit)
        tokens, embedding, positions = d.region("tokens"), d.region("embedding"), d.region(
            "positions")  # fmt: skip
        self._panel(tokens, alpha)
        recent = [t for t in list(scene.tokens)[-6:]]
        y = tokens.y + tokens.h - 2.2 * u
        for n, token in enumerate(reversed(recent)):
            colour = self.accent if n == 0 else self.dim
            self.painter.text(_candidate_label(token.text), tokens.x + 0.8 * u, y, size,
                              self._fade(colour, alpha), bold=n == 0)  # fmt: skip
            y -= 2.1 * u
        self._label(Box("", tokens.x, tokens.y - 3.5 * u, tokens.w, 3 * u), "tokens in  ↑",
                    size, alpha, self.dim)  # fmt: skip
        self._panel(embedding, alpha, 0.3)
        self._label(embedding, embedding.label, size, alpha)
        self._panel(positions, alpha, 0.15)
        self._label(positions, positions.label, size, alpha)
        self._legend(d.region("legend"), round(1.45 * u), alpha, legend(scene.anatomy.norms))

    def _flow(self, box: Box, paragraphs: list[str], size: int, alpha: float) -> None:
        """Paragraphs wrapped to the box, one after the other, as many as fit."""
        y = box.y
        for paragraph in paragraphs:
            for line in wrap(paragraph, self.painter.fonts, size, box.w - 0.6 * size):
                if y + size * 1.25 > box.y + box.h:
                    return
                self.painter.text(line, box.x + 0.4 * size, y, size, self._fade(self.ink, alpha))
                y += size * 1.22
            y += size * 0.45

    def _legend(self, box: Box, size: int, alpha: float, paragraphs: tuple[str, ...]) -> None:
        p, y = self.painter, box.y
        p.text("How to read it", box.x, y, round(size * 1.15), self._fade(self.accent, alpha),
               bold=True)  # fmt: skip
        y += size * 2.0
        for paragraph in paragraphs:
            for line in wrap(paragraph, p.fonts, size, box.w):
                if y + size * 1.3 > box.y + box.h:
                    return
                p.text(line, box.x, y, size, self._fade(self.dim, alpha))
                y += size * 1.3
            y += size * 0.6

    def _stack(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        a, u, p = scene.anatomy, d.unit, self.painter
        warm, cold = self.colours["warm"], self.colours["cold"]
        blocks = d.of("block")
        size = round(1.5 * u)
        changed = set(scene.changed)
        for tile in blocks:
            b = tile.block
            self._panel(tile, alpha, 0.9 if b == focus else 0.25 * float(a.update[b]))
            p.text(tile.label, tile.x + 0.5 * u, tile.y + 0.3 * u, size,
                   self._fade(self.accent if b == focus else self.ink, alpha), bold=b == focus)
        self._spine(blocks, u, alpha)
        for box in d.boxes:
            if box.kind in ("norm", "add", "attention", "unknown"):
                self._chip(box, size, alpha, 0.0)
                if box.kind == "attention" and f"attn:{box.block}" in changed:
                    self._struck(box, alpha)
            elif box.kind == "mlp":
                self._chip(box, size, alpha, float(a.mlp[box.block]),
                           top=bool(d.arch.block[box.block].mlp.experts))  # fmt: skip
                if f"mlp:{box.block}" in changed:
                    self._struck(box, alpha)

            elif box.kind == "expert":
                self._expert(box, a, alpha)
            elif box.kind == "badge":
                sliding = d.arch.block[box.block].attention == "sliding"
                colour = (*self.colours["cold" if sliding else "accent"], 0.35 * alpha)
                p.rect(box.x, box.y, box.w, box.h, colour)
                p.text(box.label, box.x + box.w / 2, box.y + 0.1 * u, round(1.3 * u),
                       self._fade(self.ink, alpha), anchor="center")  # fmt: skip
            elif box.kind == "meter":
                value = a.residual if box.label == "residual" else a.mlp
                colour = cold if box.label == "residual" else warm
                p.rect(box.x, box.y, box.w, box.h, (*colour, 0.15 * alpha))
                p.rect(box.x, box.y, box.w * float(value[box.block]), box.h, (*colour, 0.9 * alpha))

    def _spine(self, blocks: list[Box], u: float, alpha: float) -> None:
        """The residual stream: up each column beside its tiles, and from the top of a column
        over, down the gap and in at the foot of the next one."""
        colour = (*self.colours["accent"], 0.55 * alpha)
        width = 0.3 * u
        columns = [[b for b in blocks if b.x == left] for left in sorted({b.x for b in blocks})]
        ends = []
        for tiles in columns:
            x = tiles[0].x + 2.3 * u  # between the block's number and its parts
            top, bottom = min(t.y for t in tiles) - 0.6 * u, max(t.y + t.h for t in tiles) + 0.6 * u
            self.painter.rect(x, top, width, bottom - top, colour)
            ends.append((x, top, bottom, tiles[0].x + tiles[0].w))
        for (x, top, _, right), (next_x, _, next_bottom, _) in zip(ends, ends[1:], strict=False):
            gap = right + 0.6 * u
            self.painter.rect(x, top, gap - x + width, width, colour)  # over the top
            self.painter.rect(gap, top, width, next_bottom - top, colour)  # down the gap
            self.painter.rect(gap, next_bottom - width, next_x - gap + width, width, colour)

    def _chip(self, box: Box, size: int, alpha: float, heat: float, top: bool = False) -> None:
        """A step of a block; `top`: its label at the top (experts' cells fill the rest)."""
        warm, cold = self.colours["warm"], self.colours["cold"]
        colour = tuple(w * heat + c * (1 - heat) for w, c in zip(warm, cold, strict=True))
        self.painter.rect(box.x, box.y, box.w, box.h, (*colour, (0.25 + 0.6 * heat) * alpha))
        size = min(size, round(box.h * (0.4 if top else 0.75)))
        y = box.y + 0.05 * box.h if top else box.y + (box.h - size * 1.2) / 2
        self.painter.text(box.label, box.x + box.w / 2, y, size, self._fade(self.ink, alpha),
                          anchor="center")  # fmt: skip

    def _marks(self, d: Diagram, scene: SceneState, alpha: float, lens: bool) -> None:
        """Over the heatmaps: each tile's logit-lens word, and what an intervention changed
        (a head switched off, a block steered)."""
        u, p = d.unit, self.painter
        words = {row - 1: (word, prob) for row, word, prob in scene.lens} if lens else {}
        changed = set(scene.changed)
        for tile in d.of("block"):
            b = tile.block
            corner = tile.y + (2.3 if d.arch.sliding else 0.3) * u  # under a window badge
            if b in words:  # the logit lens: what the stream after this block would say
                word, prob = words[b]
                text = f"→ {before_number(word, 12)} {percent(prob)}"
                text_w = p.fonts.width(text, round(1.3 * u))
                right = tile.x + tile.w - 0.4 * u
                p.rect(right - text_w - 0.4 * u, corner, text_w + 0.6 * u, 1.8 * u,
                       (0, 0, 0, 0.6 * alpha))  # fmt: skip
                p.text(text, right, corner + 0.1 * u, round(1.3 * u),
                       self._fade(self.accent if b == d.arch.blocks - 1 else self.ink, alpha),
                       anchor="right")  # fmt: skip
            if any(c.startswith(f"steer {b}:") for c in changed):
                p.text("+ steered", tile.x + 0.4 * u, tile.y + tile.h - 2.2 * u,
                       round(1.2 * u), self._fade(RED, alpha))  # fmt: skip
        for box in d.of("head"):
            if f"head:{box.block}.{box.head}" in changed:
                self._struck(box, alpha)

    def _struck(self, box: Box, alpha: float) -> None:
        """A part switched off by an intervention: crossed out in red."""
        t = max(1.5, box.h / 14)
        steps = 12
        for i in range(steps):  # two diagonals of small squares
            f = (i + 0.5) / steps
            for x, y in ((box.x + f * box.w, box.y + f * box.h),
                         (box.x + f * box.w, box.y + (1 - f) * box.h)):  # fmt: skip
                self.painter.rect(x - t, y - t, 2 * t, 2 * t, self._fade(RED, alpha))

    def _expert(self, box: Box, a, alpha: float) -> None:
        """An expert's cell: lit by its routing weight for the newest token."""
        weight = float(a.experts[box.block, box.head]) if a.experts.size else 0.0
        hot, cold = self.colours["hot"], self.colours["cold"]
        colour = tuple(h * weight + c * (1 - weight) for h, c in zip(hot, cold, strict=True))
        self.painter.rect(box.x, box.y, box.w, box.h, (*colour, (0.3 + 0.7 * weight) * alpha))

    def _output(self, d: Diagram, scene: SceneState, alpha: float) -> None:
        u, size = d.unit, round(1.7 * d.unit)
        for kind in ("final_norm", "unembedding"):
            box = d.region(kind)
            self._panel(box, alpha, 0.3)
            self._label(box, box.label, size, alpha)
        softmax = d.region("softmax")
        self.painter.text(softmax.label, softmax.x, softmax.y, size, self._fade(self.dim, alpha))
        rows = scene.candidate_rows(8)
        if not rows:
            return
        step = (softmax.h - 3 * u) / len(rows)
        for i, (text, bar, printed) in enumerate(rows):  # the bar eases; its number is the frame's
            y = softmax.y + 3 * u + i * step
            colour = self.accent if i == 0 else self.ink
            self.painter.text(_candidate_label(text), softmax.x, y, size, self._fade(colour, alpha))
            bar_x, bar_w = softmax.x + 0.3 * softmax.w, 0.55 * softmax.w
            self.painter.rect(bar_x, y + 0.2 * step, bar_w, 0.5 * step, (*colour[:3], 0.12 * alpha))
            self.painter.rect(bar_x, y + 0.2 * step, bar_w * bar, 0.5 * step,
                              (*colour[:3], 0.85 * alpha))  # fmt: skip
            self.painter.text(printed, softmax.x + softmax.w, y, size, self._fade(colour, alpha),
                              anchor="right")  # fmt: skip
        ghost = scene.ghost
        if ghost is not None:  # the untouched run's, beside the changed one's
            pairs = zip(ghost.topk_text[:3], ghost.topk_probs[:3], strict=False)
            said = ", ".join(f"{before_number(t)} {percent(p)}" for t, p in pairs)
            line = f"untouched: {said}"
            self.painter.text(line, softmax.x, softmax.y + softmax.h + 0.4 * u, round(1.4 * u),
                              self._fade(self.dim, alpha))  # fmt: skip

    def _anatomy(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        u, a = d.unit, scene.anatomy
        region = d.region("anatomy")
        token = quoted_token(scene.tokens[-1].text) if scene.tokens else "∅"
        title = (f"block {focus} up close: for {token} its update is "
                 f"{a.surprise[focus]:.1f}× its recent mean")  # fmt: skip
        size = round(2.0 * u)
        while size > u and self.painter.fonts.width(title, size, bold=True) > region.w:
            size -= 1
        self.painter.text(title, region.x, region.y, size, self._fade(self.accent, alpha),
                          bold=True)  # fmt: skip
        numbers = focus_numbers(a, focus)
        size = round(1.5 * u)
        while size > u and self.painter.fonts.width(numbers, size) > region.w:
            size -= 1
        self.painter.text(numbers, region.x, region.y + 3.2 * u, size,
                          self._fade(self.dim, alpha))  # fmt: skip
        size = round(1.6 * u)
        lines = up_close(d.arch, focus)
        for box in d.boxes:
            if box.block != focus and box.kind.startswith("detail_"):
                continue
            if box.kind in ("detail_norm", "detail_add", "detail_attention", "detail_unknown"):
                self._chip(box, size, alpha, 0.0)
            elif box.kind == "detail_mlp":
                self._chip(box, size, alpha, float(a.mlp[focus]),
                           top=bool(d.arch.block[focus].mlp.experts))  # fmt: skip
            elif box.kind == "detail_expert":
                self._expert(box, a, alpha)
            elif box.kind == "notes":
                self._flow(box, [line for line, _ in lines], round(1.45 * u), alpha)
        heads = [h for h in d.of("detail_head") if h.block == focus]
        if heads and d.arch.grouped:
            for group in range(d.arch.kv_heads):
                members = [h for h in heads if h.group == group]
                left, right = members[0].x, members[-1].x + members[-1].w
                self.painter.rect(left, members[0].y - 0.8 * u, right - left, 0.3 * u,
                                  (*self.colours["accent"], 0.6 * alpha))  # fmt: skip
                self.painter.text(f"K/V head {group}", (left + right) / 2, members[0].y - 3 * u,
                                  round(1.4 * u), self._fade(self.dim, alpha), anchor="center")

    def _heatmaps(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        a = scene.anatomy
        layers, heads = a.maps.shape[:2]
        if layers == 0:
            return
        if self._atlas is None or self._atlas.size != (heads * COLUMNS, layers * ROWS):
            if self._atlas is not None:
                self._atlas.release()
            self._atlas = self.ctx.texture((heads * COLUMNS, layers * ROWS), 1, dtype="f4")
            self._maps_of = -1
        if self._maps_of != a.newest:
            atlas = a.maps.transpose(0, 2, 1, 3).reshape(layers * ROWS, heads * COLUMNS)
            self._atlas.write(np.ascontiguousarray(atlas, np.float32).tobytes())
            self._maps_of = a.newest
        rows = [(b.x, b.y, b.w, b.h, b.head, b.block) for b in d.boxes
                if b.kind == "head" or (b.kind == "detail_head" and b.block == focus)]  # fmt: skip
        p, c = self.program, self.colours
        self._atlas.use(0)
        p.set("u_atlas", 0)
        p.set("u_cells", (COLUMNS, ROWS))
        p.set("u_screen", d.size)
        for name in ("background", "cold", "warm", "hot"):
            p.set(f"u_{name}", c[name])
        p.set("u_alpha", alpha)
        self._heads.draw(np.array(rows, np.float32), moderngl.TRIANGLE_STRIP, 4)

    def release(self) -> None:
        self._heads.release()
        if self._atlas is not None:
            self._atlas.release()
