"""Every attention head's heatmap in the architecture scene: one instance of
shaders/heatmap.glsl per head, all reading a single atlas of the Anatomy's head maps, uploaded
once per token."""

import moderngl
import numpy as np

from visualizer.anatomy import COLUMNS, ROWS, Anatomy
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.diagram import Diagram
from visualizer.render.layers import Instances


class Heatmaps:
    """The heads' heatmaps: their program, instances and atlas (the scene's own GL objects)."""

    def __init__(self, shaders: ShaderLibrary) -> None:
        self.ctx = shaders.ctx
        self.program = shaders.get("heatmap")
        self._heads = Instances(shaders, "heatmap", [], "4f 2f/i", "in_rect", "in_tile")
        self._atlas: moderngl.Texture | None = None
        self._maps_of = -1  # the newest frame whose head maps are in the atlas

    def draw(self, d: Diagram, anatomy: Anatomy, focus: int, alpha: float,
             colours: dict[str, tuple[float, float, float]]) -> None:  # fmt: skip
        """Each block's heads, and the up-close block's (`focus`) again in its detail, onto the
        bound framebuffer in the look's `colours`, with `alpha` (< 1 while scenes crossfade)."""
        a = anatomy
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
        p, c = self.program, colours
        self._atlas.use(0)
        p.set("u_atlas", 0)
        p.set("u_cells", (COLUMNS, ROWS))
        p.set("u_screen", d.size)
        for name in ("background", "cold", "warm", "hot", "floor"):
            p.set(f"u_{name}", c[name])
        p.set("u_alpha", alpha)
        self._heads.draw(np.array(rows, np.float32), moderngl.TRIANGLE_STRIP, 4)

    def release(self) -> None:
        self._heads.release()
        if self._atlas is not None:
            self._atlas.release()
