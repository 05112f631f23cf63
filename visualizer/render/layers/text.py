"""Text and flat rectangles in screen pixels (shaders/ui.glsl).

Glyphs come from pygame.font (DejaVu Sans when the system has it, else pygame's bundled font);
each distinct text block is rendered once into a shared atlas texture. Every rectangle and text
block a painter is given is queued and drawn in order by one instanced draw when it is flushed:
on a CPU renderer the cost of a panel is its draw calls, and the architecture scene has
hundreds. The atlas is a fixed size: when it fills up it starts over, so a days-long kiosk run
does not grow memory. What is drawn in a frame is kept as boxes, each named by the part of the
picture it belongs to (`part`): a label is placed clear of what is already there, and the tests
check that no two parts overlap and that all lie in the safe area.
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import moderngl
import numpy as np
import pygame

from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.layers import Instances

ATLAS = 2048  # pixels a side (16 MB)
WHITE = 4  # the white patch in the atlas's corner that flat rectangles show
LARGE_KEPT = 8  # text blocks too large for the atlas, kept in textures of their own
Colour = tuple[float, float, float, float]
Rect = tuple[float, float, float, float]  # left, top, right, bottom in pixels


def _font_file() -> str | None:
    return pygame.font.match_font("dejavusans,freesans,liberationsans,notosans")


class Fonts:
    def __init__(self) -> None:
        pygame.font.init()
        self._file = _font_file()
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._widths: dict[tuple[str, int, bool], int] = {}

    def get(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (size, bold)
        if key not in self._fonts:
            font = pygame.font.Font(self._file, size)
            font.bold = bold
            self._fonts[key] = font
        return self._fonts[key]

    def width(self, text: str, size: int, bold: bool = False) -> int:
        key = (text, size, bold)
        if key not in self._widths:
            if len(self._widths) > 8192:
                self._widths.clear()
            self._widths[key] = self.get(size, bold).size(text)[0]
        return self._widths[key]


@dataclass(frozen=True)
class Block:
    """A text block's place: in the atlas (`texture` None), or a texture of its own."""

    width: int
    height: int
    uv: tuple[float, float, float, float]
    texture: moderngl.Texture | None = None


class Atlas:
    """Text blocks packed in rows into one texture, until it is full; then it starts over.
    Placing a block reserves its place at once; its pixels are uploaded by `upload`, just
    before the draw that reads them."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.texture = ctx.texture((ATLAS, ATLAS), 4)
        # blocks are drawn at their own size on whole pixels: nearest is exact, and cheaper
        self.texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.texture.write(b"\xff" * (WHITE * WHITE * 4), viewport=(0, 0, WHITE, WHITE))
        c = (WHITE / 2) / ATLAS
        self.white = (c, c, c, c)
        self.blocks: dict[tuple, Block] = {}
        self._pending: list[tuple[bytes, tuple[int, int, int, int]]] = []
        self.restart()

    def restart(self) -> None:
        """Empty: every place free again (what was drawn from it must be drawn already)."""
        self.blocks.clear()
        self._pending.clear()
        self._x, self._y, self._row = WHITE + 1, 0, WHITE

    def place(self, key: tuple, surface: pygame.Surface) -> Block | None:
        """`surface` uploaded into the atlas; None when it is full (the caller draws what it
        queued, then `restart`s)."""
        w, h = surface.get_size()
        if self._x + w > ATLAS:
            self._x, self._y, self._row = 0, self._y + self._row + 1, 0
        if self._y + h > ATLAS:
            return None
        self._pending.append((pygame.image.tobytes(surface, "RGBA"), (self._x, self._y, w, h)))
        block = Block(w, h, (self._x / ATLAS, self._y / ATLAS, (self._x + w) / ATLAS,
                             (self._y + h) / ATLAS))  # fmt: skip
        self.blocks[key] = block
        self._x += w + 1
        self._row = max(self._row, h)
        return block

    def upload(self) -> None:
        for data, viewport in self._pending:
            self.texture.write(data, viewport=viewport)
        self._pending.clear()

    def release(self) -> None:
        self.texture.release()


class Painter:
    """Queues rectangles and cached text blocks, and draws them onto the bound framebuffer, in
    the order given, with one draw call per `flush` (and one per text block too large for the
    atlas)."""

    def __init__(self, shaders: ShaderLibrary) -> None:
        self.ctx = shaders.ctx
        self.program = shaders.get("ui")
        self._instances = Instances(shaders, "ui", [], "4f 4f 4f/i", "in_rect", "in_uv",
                                    "in_colour")  # fmt: skip
        self.fonts = Fonts()
        self._atlas = Atlas(self.ctx)
        self._large: OrderedDict[tuple, Block] = OrderedDict()
        self._quads: list[tuple[float, ...]] = []
        self._held: list[tuple[float, ...]] = []  # for the flush after next
        self._holding = False
        self.screen = (1, 1)
        self.draws = 0  # draw calls this frame (the HUD and bench report them)
        # this frame's boxes: (part, box, font size; 0 for a rectangle)
        self.drawn: list[tuple[str, Rect, int]] = []
        self._part = ""

    def next_frame(self) -> None:
        """A new frame begins (the draw count and the boxes drawn start over)."""
        self.flush()
        self.draws = 0
        self.drawn.clear()

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """What is queued inside belongs to the part of the picture called `name`."""
        outer, self._part = self._part, name
        try:
            yield
        finally:
            self._part = outer

    def begin(self, size: tuple[int, int]) -> None:
        self.flush()
        self.screen = size

    @contextmanager
    def after_next_flush(self) -> Iterator[None]:
        """What is queued inside is drawn by the flush after the next one (over what other
        programs draw between the two, such as heatmaps), while its text is uploaded by the
        next: on a CPU renderer an upload into the atlas after a draw that read it waits for
        that draw."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def flush(self) -> None:
        """Draw everything queued, in order, onto the bound framebuffer; what was held for
        the flush after this one is queued now (or drawn too, if this flush is inside
        `after_next_flush`: the atlas filled up)."""
        self._atlas.upload()
        self._draw(self._quads)
        if self._holding:
            self._draw(self._held)
        else:
            self._quads, self._held = self._held, self._quads

    def _draw(self, quads: list[tuple[float, ...]], texture: moderngl.Texture | None = None
              ) -> None:  # fmt: skip
        """One instanced draw of `quads` from `texture` (the atlas by default); empties it."""
        if not quads:
            return
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self.program.set("u_screen", self.screen)
        self.program.set("u_texture", 0)
        (texture or self._atlas.texture).use(0)
        self._instances.draw(np.array(quads, np.float32), moderngl.TRIANGLE_STRIP, 4)
        quads.clear()
        self.draws += 1

    def _queue(self, quad: tuple[float, ...]) -> None:
        (self._held if self._holding else self._quads).append(quad)

    def rect(self, x: float, y: float, w: float, h: float, colour: Colour) -> None:
        self.drawn.append((self._part, (x, y, x + w, y + h), 0))
        self._queue((x, y, w, h, *self._atlas.white, *colour))

    def texture_for(self, key: tuple, render) -> Block:
        """The text block for `key`, made from the Surface `render()` returns if it is new."""
        block = self._atlas.blocks.get(key) or self._large.get(key)
        if block is not None:
            return block
        surface = render()
        w, h = surface.get_size()
        if w + 1 > ATLAS or h + 1 > ATLAS:
            texture = self.ctx.texture((w, h), 4, pygame.image.tobytes(surface, "RGBA"))
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            block = self._large[key] = Block(w, h, (0.0, 0.0, 1.0, 1.0), texture)
            if len(self._large) > LARGE_KEPT:
                self._large.popitem(last=False)[1].texture.release()
            return block
        block = self._atlas.place(key, surface)
        if block is None:  # full: what is queued still reads the old atlas, so draw it first
            self.flush()
            self._atlas.restart()
            block = self._atlas.place(key, surface)
        return block

    def image(self, block: Block, x: float, y: float, colour: Colour, size: int = 0) -> None:
        """`block` with its top left at (x, y); `size`: the font size of its text, if any."""
        quad = (round(x), round(y), block.width, block.height, *block.uv, *colour)
        self.drawn.append((self._part, (quad[0], quad[1], quad[0] + quad[2], quad[1] + quad[3]),
                           size))  # fmt: skip
        if block.texture is None:
            self._queue(quad)
            return
        self._atlas.upload()  # a large block, drawn on its own, in its place in the order
        self._draw(self._held if self._holding else self._quads)
        self._draw([quad], block.texture)

    def text(self, text: str, x: float, y: float, size: int, colour: Colour,
             bold: bool = False, anchor: str = "left") -> tuple[int, int]:  # fmt: skip
        """Queue one line (white glyphs tinted by `colour`); returns its width and height."""
        if not text:
            return 0, 0
        font = self.fonts.get(size, bold)
        block = self.texture_for(
            ("text", text, size, bold), lambda: font.render(text, True, (255, 255, 255))
        )
        if anchor == "center":
            x -= block.width / 2
        elif anchor == "right":
            x -= block.width
        self.image(block, x, y, colour, size)
        return block.width, block.height

    def release(self) -> None:
        self._quads.clear()
        self._held.clear()
        for block in self._large.values():
            block.texture.release()
        self._large.clear()
        self._atlas.release()
        self._instances.release()
