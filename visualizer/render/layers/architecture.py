"""The architecture scene: the diagram of render/diagram.py, drawn with the model's live state.

What goes where is here: the title, the caption (the prompt and the answer's newest line), the
input, the blocks with their steps and meters, the output's candidates, the up-close block, and
over the heatmaps each block's lens word and what an intervention changed. How a box, a step or
a struck-out part looks is `Marks` (architecture_marks.py); the heads' heatmaps are
`Heatmaps` (heatmaps.py, shaders/heatmap.glsl). Words are set through words.py, in the room's
sizes (room.py): the title, the facts, the caption, the candidates and the up-close block's
name carry the meaning and are never under the venue's smallest type; so do the panels' labels
(shortened where the full one does not fit, labels.py: a box drawn says what it is), the newest
tokens and the up-close block's steps. Every other label is a detail for a close look, left out
where it would be smaller.
"""

import numpy as np

from visualizer.anatomy import COLUMNS, ROWS, Anatomy
from visualizer.features import SceneState, percent
from visualizer.render.diagram import Box, Diagram, facts_line, layout, side_slot, up_close
from visualizer.render.labels import labels
from visualizer.render.layers.architecture_marks import Marks, meter_bar
from visualizer.render.layers.chrome import side_height
from visualizer.render.layers.heatmaps import Heatmaps
from visualizer.render.layers.layer import Kit, LayerInput, Overlay
from visualizer.render.layers.panels import RED
from visualizer.render.layers.room import Room, legible
from visualizer.render.layers.words import (
    before_number,
    fitted,
    quoted_token,
    token_label,
    visible,
    wrap_tokens,
)


def legend(norms: np.ndarray) -> tuple[str, ...]:
    """How to read the scene, with this token's own numbers: the layout, the colours, then the
    heatmaps (where the room is short, the last paragraphs are left out whole)."""
    low, high = (f"{norms.min():.3g}", f"{norms.max():.3g}") if len(norms) else ("?", "?")
    return (
        "Each tile is a block, from the bottom up; the residual stream, the spine, runs up "
        "each column and on at the foot of the next.",
        f"Blue: ‖h_out‖, the stream after the block, log scale {low}–{high}. Pink and the "
        "MLP's glow: its write ÷ ‖h_out‖. Frame glow: ‖Δh‖ ÷ ‖h_in‖, the block's update over "
        "the stream it read.",
        f"Squares: a heatmap per head, grouped by shared K/V head. Rows: the last {ROWS} "
        f"tokens; columns: the last {COLUMNS} positions; brightness: √weight.",
    )


def focus_numbers(anatomy: Anatomy, block: int) -> str:
    """The up-close block's numbers, each ‖h‖ named by the one it is: the update over the
    stream the block read (h_in), that stream's and the output's norms, the MLP's share of the
    output."""
    a = anatomy
    return (f"‖Δh‖ ÷ ‖h_in‖ = {a.updates[block]:.3g}; ‖h_in‖ = {a.norms[block]:.4g}, "
            f"‖h_out‖ = {a.norms[block + 1]:.4g}; MLP wrote {a.shares[block]:.1%} of ‖h_out‖"
            )  # fmt: skip


class ArchitectureView(Marks):
    """The architecture scene, over the web or in its place."""

    stage = "architecture"

    def __init__(self, kit: Kit) -> None:
        super().__init__(kit)
        self._diagram: Diagram | None = None  # laid out for the model and size it was drawn at
        self.heatmaps = Heatmaps(kit.shaders)

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
        self.room = Room.of(d.size, self.venue)
        if alpha < 1.0:  # crossfading over the web; otherwise the frame is cleared to it
            with p.part("crossfade"):
                p.rect(0, 0, *d.size, (*self.colours["background"], alpha))
        with p.part("title"):
            self._title(d, o, alpha)
        if scene.rows == 0 or len(a.residual) != d.arch.blocks:
            p.flush()
            return
        focus = a.focus
        if o.typing is None:  # the prompt box takes the caption's place while it is open
            with p.part("caption"):
                self._caption(d, scene, o, alpha)
        for part, draw in (("input", self._input), ("stack", self._stack),
                           ("output", self._output)):  # fmt: skip
            with p.part(part):
                draw(d, scene, focus, alpha)
        with p.part("anatomy"):
            self._anatomy(d, scene, focus, alpha, o)
        with p.after_next_flush(), p.part("stack"):  # over the heatmaps
            self._marks(d, scene, alpha, o.lens)
        p.flush()  # the boxes under the heatmaps
        self.heatmaps.draw(d, a, focus, alpha, self.colours)
        p.flush()

    def _title(self, d: Diagram, o: Overlay, alpha: float) -> None:
        u, arch, room = d.unit, d.arch, self.room
        name = arch.name or o.model or "the model"
        self.painter.text(f"Inside {name}", room.left, room.top, room.type(0.032),
                          self._fade(self.ink, alpha), bold=True)  # fmt: skip
        self.painter.text(facts_line(arch), room.left, room.top + 3.8 * u, room.type(0.019),
                          self._fade(self.dim, alpha))  # fmt: skip
        footer = d.region("footer")
        if footer.label:
            self._label(footer, f"Note: {footer.label}", room.detail(0.0135), alpha, self.dim,
                        anchor="left")  # fmt: skip

    def _caption(self, d: Diagram, scene: SceneState, o: Overlay, alpha: float) -> None:
        """The prompt, and the answer's newest line in large type with the current token lit:
        what a visitor reads from across the room while the diagram works."""
        box, fonts = d.region("caption"), self.painter.fonts
        small, large = self.room.type(0.022), self.room.type(0.044)
        if o.prompt:
            prompt = visible(o.prompt)
            while len(prompt) > 1 and fonts.width(f"› {prompt}…", small) > box.w:
                prompt = prompt[: int(len(prompt) * 0.9)]
            ellipsis = "…" if prompt != visible(o.prompt) else ""
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

    def _input(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        """The newest tokens, as many as the venue's type fits, and the two panels above them,
        each with the most of its label that fits (labels.py)."""
        u, size, fonts = d.unit, self.room.type(0.017), self.painter.fonts
        tokens = d.region("tokens")
        ground = self._panel(tokens, alpha)
        dim = (*legible(self.dim[:3], ground, self._text_ratio, self.floor), 1.0)  # on its fill
        step, y = max(2.1 * u, 1.2 * size), tokens.y + tokens.h - max(2.2 * u, 1.25 * size)
        shown = min(6, 1 + int((y - tokens.y - 0.2 * u) // step))
        for n, token in enumerate(reversed(list(scene.tokens)[-shown:])):
            colour, text = self.accent if n == 0 else dim, token_label(token.text)
            text = fitted(fonts, text, "", tokens.w - 1.6 * u, size, n == 0)
            self.painter.text(text, tokens.x + 0.8 * u, y, size, self._fade(colour, alpha),
                              bold=n == 0)  # fmt: skip
            y -= step
        self._label(Box("", tokens.x, tokens.y - 3.5 * u, tokens.w, 3 * u), "tokens in  ↑",
                    size, alpha, self.dim)  # fmt: skip
        for kind, glow in (("embedding", 0.3), ("positions", 0.15)):
            box = d.region(kind)
            self._named(box, labels(d.arch, box), size, alpha, glow)
        self._legend(d.region("legend"), self.room.detail(0.0145), alpha,
                     legend(scene.anatomy.norms))  # fmt: skip

    def _stack(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        a, u, p = scene.anatomy, d.unit, self.painter
        warm, cold = self.colours["warm"], self.colours["cold"]
        blocks = d.of("block")
        size, badge = self.room.detail(0.015), self.room.detail(0.013)
        changed, grounds = set(scene.changed), {}
        for tile in blocks:
            b = tile.block
            grounds[b] = self._panel(tile, alpha, 0.9 if b == focus else 0.25 * float(a.update[b]))
            if size:
                p.text(tile.label, tile.x + 0.5 * u, tile.y + 0.3 * u, size,
                       self._fade(self.accent if b == focus else self.ink, alpha),
                       bold=b == focus)  # fmt: skip
        self._spine(blocks, u, alpha)
        for box in d.boxes:
            if box.kind in ("norm", "add", "attention", "unknown"):
                self._chip(box, size, alpha, 0.0, ground=grounds[box.block])
                if box.kind == "attention" and f"attn:{box.block}" in changed:
                    self._struck(box, alpha)
            elif box.kind == "mlp":
                self._chip(box, size, alpha, float(a.mlp[box.block]),
                           top=bool(d.arch.block[box.block].mlp.experts),
                           ground=grounds[box.block])  # fmt: skip
                if f"mlp:{box.block}" in changed:
                    self._struck(box, alpha)

            elif box.kind == "expert":
                self._expert(box, a, alpha)
            elif box.kind == "badge":
                sliding = d.arch.block[box.block].attention == "sliding"
                colour = (*self.colours["cold" if sliding else "accent"], 0.35 * alpha)
                p.rect(box.x, box.y, box.w, box.h, colour)
                if badge:
                    p.text(box.label, box.x + box.w / 2, box.y + 0.1 * u, badge,
                           self._fade(self.ink, alpha), anchor="center")  # fmt: skip
            elif box.kind == "meter":  # its bar as light as a frame, its track a faint rule
                value = a.residual if box.label == "residual" else a.mlp
                colour = cold if box.label == "residual" else warm
                lit = meter_bar(colour, grounds[box.block], self.floor)
                p.rect(box.x, box.y, box.w, box.h, (*colour, 0.15 * alpha))
                p.rect(box.x, box.y, box.w * float(value[box.block]), box.h, (*lit, alpha))

    def _output(self, d: Diagram, scene: SceneState, focus: int, alpha: float) -> None:
        u, size, room = d.unit, self.room.type(0.017), self.room
        for kind in ("final_norm", "unembedding"):
            box = d.region(kind)
            self._named(box, labels(d.arch, box), size, alpha, 0.3)
        softmax = d.region("softmax")
        if room.detail(0.017):
            self.painter.text(softmax.label, softmax.x, softmax.y, size,
                              self._fade(self.dim, alpha))  # fmt: skip
        ghost, small = scene.ghost, room.type(0.014)
        room_h = softmax.h - 3 * u - (small * 1.4 if ghost is not None else 0)
        rows = scene.candidate_rows(min(8, int(room_h // (size * 1.3))))  # as many as read
        if not rows:
            return
        step = room_h / len(rows)
        for i, (text, bar, printed) in enumerate(rows):  # the bar eases; its number is the frame's
            y = softmax.y + 3 * u + i * step
            colour = self.accent if i == 0 else self.ink
            self.painter.text(token_label(text), softmax.x, y, size, self._fade(colour, alpha))
            bar_x, bar_w = softmax.x + 0.3 * softmax.w, 0.55 * softmax.w
            self.painter.rect(bar_x, y + 0.2 * step, bar_w, 0.5 * step, (*colour[:3], 0.12 * alpha))
            self.painter.rect(bar_x, y + 0.2 * step, bar_w * bar, 0.5 * step,
                              (*colour[:3], 0.85 * alpha))  # fmt: skip
            self.painter.text(printed, softmax.x + softmax.w, y, size, self._fade(colour, alpha),
                              anchor="right")  # fmt: skip
        if ghost is not None:  # the untouched run's, beside the changed one's
            pairs = zip(ghost.topk_text[:3], ghost.topk_probs[:3], strict=False)
            said = ", ".join(f"{before_number(t)} {percent(p)}" for t, p in pairs)
            line = fitted(self.painter.fonts, f"untouched: {said}", "", softmax.w, small, False)
            self.painter.text(line, softmax.x, softmax.y + softmax.h - small * 1.25, small,
                              self._fade(self.dim, alpha))  # fmt: skip

    def _anatomy(self, d: Diagram, scene: SceneState, focus: int, alpha: float, o: Overlay
                 ) -> None:  # fmt: skip
        """The block up close; its notes give way at their foot to what the chrome puts there
        (chrome.side_items)."""
        u, a, room, fonts = d.unit, scene.anatomy, self.room, self.painter.fonts
        region = d.region("anatomy")
        token = quoted_token(scene.tokens[-1].text) if scene.tokens else "∅"
        title = (f"block {focus} up close: for {token} its update is "
                 f"{a.surprise[focus]:.1f}× its recent mean")  # fmt: skip
        size = round(2.0 * u)
        while size > room.least and fonts.width(title, size, bold=True) > region.w:
            size -= 1
        if fonts.width(title, size, bold=True) > region.w:  # the rest is said up close
            title, size = f"block {focus} up close", room.least
        self.painter.text(title, region.x, region.y, size, self._fade(self.accent, alpha),
                          bold=True)  # fmt: skip
        numbers = focus_numbers(a, focus)
        size = round(1.5 * u)
        while size > u and fonts.width(numbers, size) > region.w:
            size -= 1
        if size >= room.least:
            self.painter.text(numbers, region.x, region.y + 3.2 * u, size,
                              self._fade(self.dim, alpha))  # fmt: skip
        size = room.type(0.016)  # the steps' names, in a hall too; its notes a close look's
        lines = up_close(d.arch, focus)
        slot = side_slot(d.arch, d.size)
        taken = side_height(room, o, fonts, slot.w)  # the chrome's, at the column's foot
        for box in d.boxes:
            if box.block != focus and box.kind.startswith("detail_"):
                continue
            if box.kind.startswith("detail_") and box.y + box.h > slot.y + slot.h - taken:
                continue  # under the chrome's: its steps give way while it is there
            if box.kind in ("detail_norm", "detail_add", "detail_attention", "detail_unknown"):
                self._chip(box, size, alpha, 0.0)
            elif box.kind == "detail_mlp":
                self._chip(box, size, alpha, float(a.mlp[focus]),
                           top=bool(d.arch.block[focus].mlp.experts))  # fmt: skip
            elif box.kind == "detail_expert":
                self._expert(box, a, alpha)
            elif box.kind == "notes":
                box = Box("notes", box.x, box.y, box.w, box.h - taken)
                self._flow(box, [line for line, _ in lines], room.detail(0.0145), alpha)
        heads = [h for h in d.of("detail_head") if h.block == focus]
        if heads and d.arch.grouped:
            for group in range(d.arch.kv_heads):
                members = [h for h in heads if h.group == group]
                left, right = members[0].x, members[-1].x + members[-1].w
                self.painter.rect(left, members[0].y - 0.8 * u, right - left, 0.3 * u,
                                  (*self.colours["accent"], 0.6 * alpha))  # fmt: skip
                if room.detail(0.014):
                    self.painter.text(f"K/V head {group}", (left + right) / 2,
                                      members[0].y - 3 * u, room.detail(0.014),
                                      self._fade(self.dim, alpha), anchor="center")  # fmt: skip

    def _marks(self, d: Diagram, scene: SceneState, alpha: float, lens: bool) -> None:
        """Over the heatmaps: each tile's logit-lens word, and what an intervention changed
        (a head switched off, a block steered)."""
        u, p, small = d.unit, self.painter, self.room.detail(0.013)
        words = {row - 1: (word, prob) for row, word, prob in scene.lens} if lens and small else {}
        changed = set(scene.changed)
        for tile in d.of("block"):
            b = tile.block
            corner = tile.y + (2.3 if d.arch.sliding else 0.3) * u  # under a window badge
            if b in words:  # the logit lens: what the stream after this block would say
                word, prob = words[b]
                text = f"→ {before_number(word, 12)} {percent(prob)}"
                text_w = p.fonts.width(text, small)
                right = tile.x + tile.w - 0.4 * u
                p.rect(right - text_w - 0.4 * u, corner, text_w + 0.6 * u, 1.8 * u,
                       (0, 0, 0, 0.6 * alpha))  # fmt: skip
                p.text(text, right, corner + 0.1 * u, small,
                       self._fade(self.accent if b == d.arch.blocks - 1 else self.ink, alpha),
                       anchor="right")  # fmt: skip
            if any(c.startswith(f"steer {b}:") for c in changed) and self.room.detail(0.012):
                p.text("+ steered", tile.x + 0.4 * u, tile.y + tile.h - 2.2 * u,
                       self.room.detail(0.012), self._fade(RED, alpha))  # fmt: skip
        for box in d.of("head"):
            if f"head:{box.block}.{box.head}" in changed:
                self._struck(box, alpha)

    def release(self) -> None:
        self.heatmaps.release()
