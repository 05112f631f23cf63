"""How each mark of the architecture scene looks, in the look's colours: a box (a dark fill
under its words and a light frame that glows), a block's step (a chip), an expert's cell, a
part struck out, the residual stream's spine, and words wrapped into a box. Where each goes is
the scene's (`ArchitectureView`, architecture.py).

Luminance first (room.py): the fills are dark, the ground the words stand on; what tells the
parts apart is light. Each frame and each step's outline stands 3:1 from what lies around it
at rest and brightens toward the warm colour with its value; text stands 4.5:1 (7:1 on a
projector) from what it is drawn on, dark on a step lit bright. The look's colours are lifted
where they fall short (`legible`), and at rest lit no more than they must be (`quiet`).
"""

from functools import cache

from visualizer.config import rgb
from visualizer.render.diagram import Box
from visualizer.render.layers.layer import Kit, Layer
from visualizer.render.layers.panels import RED
from visualizer.render.layers.room import MARK, RGB, Room, contrast, legible, over, quiet
from visualizer.render.layers.words import wrap

MARGIN = 0.25  # over each least ratio: what the blend's 8 bits may take off
STEPS = 64  # a value (a glow, a heat) is drawn in this many steps: the colours are cached


def step(value: float) -> float:
    """`value` (0..1) to its step, rounded up."""
    return min(1.0, -(-value * STEPS // 1) / STEPS)


@cache
def _outline(rest: RGB, lit: RGB, value: float, ground: RGB, floor: float) -> RGB:
    """A frame's colour, `value` (a step) of the way from `rest` to `lit`, 3:1 from `ground`."""
    mixed = tuple(a + (b - a) * value for a, b in zip(rest, lit, strict=True))
    return legible(mixed, ground, MARK + MARGIN, floor)


@cache
def _lit_step(fill: RGB, ground: RGB, ink: RGB, dark: RGB, ratio: float) -> tuple[RGB, RGB]:
    """A step's fill (as drawn over its `ground`) and its words' colour: the ink where it
    stands `ratio` from the fill, else the dark; a fill too bright for the ink and too dim
    for the dark is drawn dimmer, just enough for the ink."""
    if contrast(ink, fill) >= ratio or contrast(dark, fill) >= ratio:
        return fill, max((ink, dark), key=lambda c: contrast(c, fill))
    low, high = 0.0, 1.0
    for _ in range(20):
        t = (low + high) / 2
        mixed = tuple(g + (f - g) * t for f, g in zip(fill, ground, strict=True))
        low, high = (t, high) if contrast(ink, mixed) >= ratio else (low, t)
    return tuple(g + (f - g) * low for f, g in zip(fill, ground, strict=True)), ink


@cache
def meter_bar(colour: RGB, ground: RGB, floor: float) -> RGB:
    """A meter's bar: `colour`, 3:1 from its `ground` (a cached step of a fill)."""
    return legible(colour, ground, MARK + MARGIN, floor)


class Marks(Layer):
    """A layer that draws the architecture's marks with the shared painter."""

    def __init__(self, kit: Kit) -> None:
        self.painter, look, self.venue = kit.painter, kit.look, kit.venue
        self.room = Room.of((1, 1), kit.venue)  # the output's, set as a frame is drawn
        c = {name: rgb(getattr(look, name)) for name in
             ("background", "cold", "warm", "hot", "text", "accent")}  # fmt: skip
        self.colours = c
        room, bg = Room.of((1, 1), kit.venue), c["background"]
        ratio, self.floor = room.text_ratio + MARGIN, room.lit
        self.ink = (*legible(c["text"], bg, ratio, self.floor), 1.0)
        self.dim = (*legible(over((*c["text"], 0.6), bg), bg, ratio, self.floor), 1.0)
        self.accent = (*legible(c["accent"], bg, ratio, self.floor), 1.0)
        self._text_ratio = ratio
        # a frame at rest and lit: 3:1 from the background, the warm one no dimmer
        self.line = quiet(c["cold"], bg, MARK + MARGIN, self.floor)
        self.lit_line = legible(c["warm"], bg, MARK + MARGIN, self.floor)
        # the heatmaps' weakest weight: the background's lift, or 5 % on a projector
        c["floor"] = (quiet(c["cold"], bg, 1.0, self.floor + 0.003) if self.floor else
                      tuple(min(1.0, 1.6 * v) for v in bg))  # fmt: skip

    def _fade(self, colour: tuple, alpha: float) -> tuple:
        return (*colour[:3], colour[3] * alpha)

    def _label(self, box: Box, text: str, size: int | None, alpha: float, colour=None,
               anchor: str = "center") -> None:  # fmt: skip
        """`text` wrapped to the box, centred in it (or from its left edge); none without a
        size (a detail the room leaves out)."""
        if size is None:
            return
        lines = wrap(text, self.painter.fonts, size, box.w - 0.6 * size)
        step = size * 1.25
        y = box.y + (box.h - step * len(lines)) / 2
        x = box.x + box.w / 2 if anchor == "center" else box.x + 0.4 * size
        for line in lines:
            self.painter.text(line, x, y, size, self._fade(colour or self.ink, alpha),
                              anchor=anchor)  # fmt: skip
            y += step

    def _named(self, box: Box, labels: tuple[str, ...], size: int, alpha: float, glow: float
               ) -> None:  # fmt: skip
        """A panel with the first of `labels` (most said first) that fits in it at `size`;
        left out where none fits: a box drawn says what it is."""
        fonts, room = self.painter.fonts, box.w - 0.6 * size
        for text in labels:
            lines = wrap(text, fonts, size, room)
            if (len(lines) * size * 1.25 <= box.h - 0.1 * size
                    and max(fonts.width(line, size) for line in lines) <= room):  # fmt: skip
                self._panel(box, alpha, glow)
                self._label(box, text, size, alpha)
                return

    def _panel(self, box: Box, alpha: float, glow: float = 0.0) -> RGB:
        """A box: a dark fill and a light frame, both brighter with `glow` (0..1); returns
        the fill as drawn over the background (the ground of what is drawn in the box)."""
        p, cold, bg = self.painter, self.colours["cold"], self.colours["background"]
        glow = step(glow)
        fill = (*(c * (0.18 + 0.5 * glow) for c in cold), 0.85)
        p.rect(box.x, box.y, box.w, box.h, self._fade(fill, alpha))
        self._frame(box, (*_outline(self.line, self.lit_line, glow, bg, self.floor), alpha))
        return over(fill, bg)

    def _frame(self, box: Box, colour: tuple) -> None:
        t = self.room.stroke
        sides = ((box.x, box.y, box.w, t), (box.x, box.y + box.h - t, box.w, t),
                 (box.x, box.y + t, t, box.h - 2 * t), (box.x + box.w - t, box.y + t, t,
                                                          box.h - 2 * t))  # fmt: skip
        for x, y, w, h in sides:
            self.painter.rect(x, y, w, h, colour)

    def _flow(self, box: Box, paragraphs: list[str], size: int | None, alpha: float) -> None:
        """Paragraphs wrapped to the box, one after the other, as many whole ones as fit (a
        paragraph cut off mid-sentence reads as a statement it is not)."""
        if size is None:
            return
        y = box.y
        for paragraph in paragraphs:
            lines = wrap(paragraph, self.painter.fonts, size, box.w - 0.6 * size)
            if y + (len(lines) - 1) * size * 1.22 + size * 1.25 > box.y + box.h:
                return
            for line in lines:
                self.painter.text(line, box.x + 0.4 * size, y, size, self._fade(self.ink, alpha))
                y += size * 1.22
            y += size * 0.45

    def _legend(self, box: Box, size: int | None, alpha: float, paragraphs: tuple[str, ...]
                ) -> None:  # fmt: skip
        if size is None:
            return
        p, y = self.painter, box.y
        p.text("How to read it", box.x, y, round(size * 1.15), self._fade(self.accent, alpha),
               bold=True)  # fmt: skip
        y += size * 2.0
        for paragraph in paragraphs:  # whole paragraphs only, as _flow
            lines = wrap(paragraph, p.fonts, size, box.w)
            if y + len(lines) * size * 1.3 > box.y + box.h:
                return
            for line in lines:
                p.text(line, box.x, y, size, self._fade(self.dim, alpha))
                y += size * 1.3
            y += size * 0.6

    def _chip(self, box: Box, size: int | None, alpha: float, heat: float, top: bool = False,
              ground: RGB | None = None) -> None:  # fmt: skip
        """A step of a block on `ground` (the background by default): a light outline, its
        fill lit warm with `heat`; `top`: its label at the top (experts' cells fill the rest);
        no label without a size, or where the chip is too small (or too narrow) for the room's
        least type."""
        warm, cold = self.colours["warm"], self.colours["cold"]
        ground, heat = ground or self.colours["background"], step(heat)
        colour = tuple(w * heat + c * (1 - heat) for w, c in zip(warm, cold, strict=True))
        fill, ink = _lit_step(over((*colour, 0.25 + 0.6 * heat), ground), ground, self.ink[:3],
                              self.colours["background"], self._text_ratio)  # fmt: skip
        self.painter.rect(box.x, box.y, box.w, box.h, (*fill, alpha))
        self._frame(box, (*_outline(self.line, self.lit_line, heat, ground, self.floor), alpha))
        if size is None:
            return
        size = min(size, round(box.h * (0.4 if top else 0.75)))
        if size < self.room.least or self.painter.fonts.width(box.label, size) > box.w:
            return
        y = box.y + 0.05 * box.h if top else box.y + (box.h - size * 1.2) / 2
        self.painter.text(box.label, box.x + box.w / 2, y, size, (*ink, alpha), anchor="center")

    def _expert(self, box: Box, a, alpha: float) -> None:
        """An expert's cell: lit by its routing weight for the newest token."""
        weight = float(a.experts[box.block, box.head]) if a.experts.size else 0.0
        hot, cold = self.colours["hot"], self.colours["cold"]
        colour = tuple(h * weight + c * (1 - weight) for h, c in zip(hot, cold, strict=True))
        self.painter.rect(box.x, box.y, box.w, box.h, (*colour, (0.3 + 0.7 * weight) * alpha))

    def _struck(self, box: Box, alpha: float) -> None:
        """A part switched off by an intervention: crossed out in red."""
        t = max(1.5, box.h / 14)
        steps = 12
        for i in range(steps):  # two diagonals of small squares
            f = (i + 0.5) / steps
            for x, y in ((box.x + f * box.w, box.y + f * box.h),
                         (box.x + f * box.w, box.y + (1 - f) * box.h)):  # fmt: skip
                self.painter.rect(x - t, y - t, 2 * t, 2 * t, self._fade(RED, alpha))

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
