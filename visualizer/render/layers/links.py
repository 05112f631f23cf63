"""Links between adjacent rows of the tower, lit by the nodes they join, and the token path's
own line (shaders/links.glsl). Links are shuffled once, so the governor's lower detail thins
them evenly instead of cutting off the top of the tower."""

import moderngl
import numpy as np

from visualizer.render import layout
from visualizer.render.layers import Instances, per_vertex, set_lines, set_palette
from visualizer.render.layers.layer import Kit, Layer, LayerInput

PATH_LEVEL = 0.55


class Links(Layer):
    stage = "light"

    def __init__(self, kit: Kit) -> None:
        shaders, self.look = kit.shaders, kit.look
        self.program, self._ctx = shaders.get("links"), shaders.ctx
        self._ends, ends = per_vertex(shaders, np.array([0, 1]), "1f", "in_end")
        self._lines = Instances(shaders, "links", ends, "3f 3f 1f 1f/i", "in_a", "in_b",
                                "in_value", "in_hue")  # fmt: skip
        self._shape = (0, 0)
        self._pairs = np.zeros((0, 2), np.int32)
        self._ab = np.zeros((0, 6), np.float32)
        self._data = np.zeros((0, 8), np.float32)
        self._path = np.zeros((0, 8), np.float32)

    def update(self, frame: LayerInput) -> None:
        scene, dots = frame.scene, frame.path  # the path's dots [n, 5]: pos, level, hue
        if scene.level.shape != self._shape:
            self._shape = rows, nodes = scene.level.shape
            pairs = layout.link_pairs(rows, nodes, self.look.link_fanout)
            self._pairs = pairs[np.random.default_rng(0).permutation(len(pairs))]
            pos = layout.node_positions(rows, nodes).reshape(-1, 3)
            self._ab = np.hstack([pos[self._pairs[:, 0]], pos[self._pairs[:, 1]]])
        level, hue = scene.level.reshape(-1), scene.hue.reshape(-1)
        a, b = self._pairs[:, 0], self._pairs[:, 1]
        value = np.sqrt(level[a] * level[b])
        self._data = np.column_stack([self._ab, value, 0.5 * (hue[a] + hue[b])])
        if len(dots) > 1:
            fade = np.minimum(dots[:-1, 3], dots[1:, 3])[:, None]
            self._path = np.hstack([dots[:-1, :3], dots[1:, :3], PATH_LEVEL * fade**0.3,
                                    dots[1:, 4:5]])  # fmt: skip
        else:
            self._path = np.zeros((0, 8), np.float32)

    def draw(self, frame: LayerInput) -> None:
        p = self.program
        p.write("u_mvp", frame.mvp)
        p.set("u_depth", frame.depth)
        set_palette(p, self.look)
        set_lines(self._ctx, p, frame.size[1], frame.render_scale)
        shown = self._data[: int(len(self._data) * frame.detail)]
        self._lines.draw(np.vstack([shown, self._path]), moderngl.LINES, 2)

    def release(self) -> None:
        self._lines.release()
        self._ends.release()
