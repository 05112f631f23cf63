"""Glowing nodes: the tower's rows of neurons, and the tokens on the path (shaders/nodes.glsl;
the path's dots are LayerInput.path)."""

import math

import moderngl
import numpy as np

from visualizer.render import layout
from visualizer.render.layers import Instances, per_vertex, set_palette
from visualizer.render.layers.layer import Kit, Layer, LayerInput

NODE_SIZE = 0.045
DOT_SIZE = 0.06
INSTANCE = ("3f 1f 1f/i", "in_pos", "in_level", "in_hue")


class Nodes(Layer):
    stage = "light"

    def __init__(self, kit: Kit) -> None:
        shaders, self.look = kit.shaders, kit.look
        self.program = shaders.get("nodes")
        corners = np.array([-1, -1, 1, -1, -1, 1, 1, 1])
        self._corners, sprite = per_vertex(shaders, corners, "2f", "in_corner")
        self._tower = Instances(shaders, "nodes", sprite, *INSTANCE)
        self._dots = Instances(shaders, "nodes", sprite, *INSTANCE)
        self._shape = (0, 0)
        self._positions = np.zeros((0, 3), np.float32)
        self._tower_data = np.zeros((0, 5), np.float32)
        self._dot_data = np.zeros((0, 5), np.float32)

    def update(self, frame: LayerInput) -> None:
        scene = frame.scene
        if scene.level.shape != self._shape:
            self._shape = scene.level.shape
            self._positions = layout.node_positions(*self._shape).reshape(-1, 3)
        self._tower_data = np.column_stack(
            [self._positions, scene.level.reshape(-1), scene.hue.reshape(-1)]
        )
        self._dot_data = frame.path

    def draw(self, frame: LayerInput) -> None:
        p, look = self.program, self.look
        p.write("u_mvp", frame.mvp)
        p.set("u_depth", frame.depth)
        p.set("u_scale", frame.focal)
        p.set("u_pulse", frame.scene.pulse)
        set_palette(p, look)
        p.set("u_gain", 1.0)
        p.set("u_ages", frame.ages)
        p.set("u_tower", layout.TOWER_HEIGHT / 2)
        p.set("u_wave", 1.0)
        p.set("u_size", NODE_SIZE * look.node_size)
        self._tower.draw(self._tower_data, moderngl.TRIANGLE_STRIP, 4)
        p.set("u_gain", 0.85 + 0.15 * math.cos(frame.time * 2.0))
        p.set("u_wave", 0.0)
        p.set("u_size", DOT_SIZE * look.node_size)
        self._dots.draw(self._dot_data, moderngl.TRIANGLE_STRIP, 4)

    def release(self) -> None:
        self._tower.release()
        self._dots.release()
        self._corners.release()
