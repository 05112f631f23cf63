"""Attention arcs (shaders/arcs.glsl): for each layer, from the tower at that layer's height to
the earlier tokens its heads attend to most, weighted by their mean attention share as it is;
the first token in view (the sink) included, at the far end of the path once it is older."""

import moderngl
import numpy as np

from visualizer.render import layout
from visualizer.render.layers import Instances, per_vertex, set_lines, set_palette, smooth_lines
from visualizer.render.layers.layer import Kit, Layer, LayerInput

SEGMENTS = 16


class Arcs(Layer):
    stage = "light"

    def __init__(self, kit: Kit) -> None:
        shaders, self.look = kit.shaders, kit.look
        self.program, self._ctx = shaders.get("arcs"), shaders.ctx
        self._t, steps = per_vertex(shaders, np.linspace(0, 1, SEGMENTS + 1), "1f", "in_t")
        self._arcs = Instances(shaders, "arcs", steps, "3f 3f 1f/i", "in_start", "in_end",
                               "in_weight")  # fmt: skip
        self._data = np.zeros((0, 7), np.float32)

    def update(self, frame: LayerInput) -> None:
        scene, history = frame.scene, self.look.history
        if not scene.arcs or scene.rows < 2:
            self._data = np.zeros((0, 7), np.float32)
            return
        keys = np.array(list(scene.arcs.keys()), np.float32)  # [n, 2] layer, run position
        weights = np.array(list(scene.arcs.values()), np.float32)
        slots = np.array([scene.slot_of(int(p)) for p in keys[:, 1]], np.float32)
        keep = slots < history
        keys, weights, slots = keys[keep], weights[keep], slots[keep]
        end = layout.path_positions(slots, history)
        angle = layout.path_angle(slots, history)
        heights = layout.row_height(scene.rows)
        layer = keys[:, 0].astype(int)
        y = 0.5 * (heights[layer] + heights[layer + 1])  # inside block `layer`
        r = layout.RING_RADIUS
        start = np.column_stack([r * np.cos(angle), y, r * np.sin(angle)])
        data = np.column_stack([start, end, weights]).astype(np.float32)
        self._data = data[np.argsort(-weights)]  # strongest first: lower detail drops the weakest

    def draw(self, frame: LayerInput) -> None:
        p = self.program
        p.write("u_mvp", frame.mvp)
        set_palette(p, self.look)
        set_lines(self._ctx, p, frame.size[1], frame.render_scale)
        p.set("u_since", frame.ages[0])
        shown = self._data[: max(1, int(len(self._data) * frame.detail))]
        with smooth_lines(self._ctx, frame.render_scale < 1.0):
            self._arcs.draw(shown, moderngl.LINE_STRIP, SEGMENTS + 1)

    def release(self) -> None:
        self._arcs.release()
        self._t.release()
