"""Glowing nodes: the tower's rows of neurons, and the tokens on the path (shaders/nodes.glsl).

Path dots: prompt tokens are cold, generated ones warm; a dot brightens with the attention the
newest token pays it, and the newest token is the brightest.
"""

import math

import moderngl
import numpy as np

from visualizer.config import LookSettings, rgb
from visualizer.features import SceneState
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render import layout
from visualizer.render.layers import Instances, View

NODE_SIZE = 0.045
DOT_SIZE = 0.06
INSTANCE = ("3f 1f 1f/i", "in_pos", "in_level", "in_hue")


def path_dots(scene: SceneState, history: int) -> np.ndarray:
    """[n, 5] instances (pos, level, hue) for the tokens on the path, oldest first."""
    tokens = list(scene.tokens)[-(history + 2) :]
    if not tokens:
        return np.zeros((0, 5), np.float32)
    index = np.array([t.index for t in tokens], np.float32)
    slots = scene.head - index  # 0 = the newest, fractional while scrolling
    got = scene.attention_received()
    received = np.array([got.get(t.index, 0.0) for t in tokens], np.float32)
    level = 0.22 + 0.6 * np.sqrt(np.minimum(received / max(scene.rows - 1, 1) * 3, 1))
    level[-1] = 1.0
    fade = np.clip(history - slots, 0, 1)  # the oldest slide off the end of the path
    hue = np.array([0.0 if t.is_prompt else 0.9 for t in tokens], np.float32)
    pos = layout.path_positions(slots, history)
    return np.column_stack([pos, level * fade, hue]).astype(np.float32)


class Nodes:
    def __init__(self, shaders: ShaderLibrary, look: LookSettings) -> None:
        self.program = shaders.get("nodes")
        self.look = look
        corners = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
        self._corners = shaders.ctx.buffer(corners.tobytes())
        per_vertex = [(self._corners, "2f", "in_corner")]
        self._tower = Instances(shaders, "nodes", per_vertex, *INSTANCE)
        self._dots = Instances(shaders, "nodes", per_vertex, *INSTANCE)
        self._shape = (0, 0)
        self._positions = np.zeros((0, 3), np.float32)
        self._tower_data = np.zeros((0, 5), np.float32)
        self._dot_data = np.zeros((0, 5), np.float32)

    def update(self, scene: SceneState, dots: np.ndarray) -> None:
        """`dots`: path_dots(scene, look.history), shared with the links."""
        if scene.level.shape != self._shape:
            self._shape = scene.level.shape
            self._positions = layout.node_positions(*self._shape).reshape(-1, 3)
        self._tower_data = np.column_stack(
            [self._positions, scene.level.reshape(-1), scene.hue.reshape(-1)]
        )
        self._dot_data = dots

    def draw(self, view: View) -> None:
        p, look = self.program, self.look
        p.write("u_mvp", view.mvp)
        p.set("u_scale", view.scale)
        p.set("u_pulse", view.pulse)
        p.set("u_cold", rgb(look.cold))
        p.set("u_warm", rgb(look.warm))
        p.set("u_hot", rgb(look.hot))
        p.set("u_gain", 1.0)
        p.set("u_size", NODE_SIZE * look.node_size)
        self._tower.draw(self._tower_data, moderngl.TRIANGLE_STRIP, 4)
        p.set("u_gain", 0.85 + 0.15 * math.cos(view.time * 2.0))
        p.set("u_size", DOT_SIZE * look.node_size)
        self._dots.draw(self._dot_data, moderngl.TRIANGLE_STRIP, 4)

    def release(self) -> None:
        self._tower.release()
        self._dots.release()
        self._corners.release()
