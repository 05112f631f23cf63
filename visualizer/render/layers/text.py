"""Text and flat rectangles in screen pixels (shaders/ui.glsl).

Glyphs come from pygame.font (DejaVu Sans when the system has it, else pygame's bundled font);
each distinct text block is rendered once into a texture and kept in a small LRU cache, so an
unchanged panel costs one quad per frame and a days-long kiosk run does not grow memory.
"""

from collections import OrderedDict

import moderngl
import pygame

from visualizer.render.shaders import ShaderLibrary

CACHE_TEXTURES = 256
Colour = tuple[float, float, float, float]


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


class Painter:
    """Draws rectangles and cached text blocks onto the bound framebuffer."""

    def __init__(self, shaders: ShaderLibrary) -> None:
        self.ctx = shaders.ctx
        self.program = shaders.get("ui")
        self.vao = shaders.vertex_array("ui", [])
        self.fonts = Fonts()
        self._cache: OrderedDict[tuple, moderngl.Texture] = OrderedDict()
        self.screen = (1, 1)

    def begin(self, size: tuple[int, int]) -> None:
        self.screen = size
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self.program.set("u_screen", size)
        self.program.set("u_texture", 0)

    def rect(self, x: float, y: float, w: float, h: float, colour: Colour) -> None:
        self.program.set("u_rect", (x, y, w, h))
        self.program.set("u_colour", colour)
        self.program.set("u_textured", False)
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4)

    def texture_for(self, key: tuple, render) -> moderngl.Texture:
        """The cached texture for `key`, or one made from the Surface `render()` returns."""
        texture = self._cache.get(key)
        if texture is None:
            surface = render()
            data = pygame.image.tobytes(surface, "RGBA")
            texture = self.ctx.texture(surface.get_size(), 4, data)
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            self._cache[key] = texture
            if len(self._cache) > CACHE_TEXTURES:
                self._cache.popitem(last=False)[1].release()
        else:
            self._cache.move_to_end(key)
        return texture

    def image(self, texture: moderngl.Texture, x: float, y: float, colour: Colour) -> None:
        texture.use(0)
        self.program.set("u_rect", (round(x), round(y), texture.width, texture.height))
        self.program.set("u_colour", colour)
        self.program.set("u_textured", True)
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4)

    def text(self, text: str, x: float, y: float, size: int, colour: Colour,
             bold: bool = False, anchor: str = "left") -> tuple[int, int]:  # fmt: skip
        """Draw one line (white glyphs tinted by `colour`); returns its width and height."""
        if not text:
            return 0, 0
        font = self.fonts.get(size, bold)
        texture = self.texture_for(
            ("text", text, size, bold), lambda: font.render(text, True, (255, 255, 255))
        )
        if anchor == "center":
            x -= texture.width / 2
        elif anchor == "right":
            x -= texture.width
        self.image(texture, x, y, colour)
        return texture.width, texture.height

    def release(self) -> None:
        for texture in self._cache.values():
            texture.release()
        self._cache.clear()
        self.vao.release()
