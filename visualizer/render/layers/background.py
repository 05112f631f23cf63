"""The animated backdrop (shaders/background.glsl). It is a smooth field, so the bloom draws it
at a quarter of the render scale into its glow layer (a full-size pass of it cost llvmpipe as
much as all the 3D layers together)."""

import moderngl

from visualizer.gl import dither
from visualizer.render.layers import set_palette
from visualizer.render.layers.layer import Kit, Layer, LayerInput


class Background(Layer):
    stage = "backdrop"

    def __init__(self, kit: Kit) -> None:
        self.program = kit.shaders.get("background")
        self.vao = kit.shaders.vertex_array("background", [])
        self.look = kit.look

    def draw(self, frame: LayerInput) -> None:
        """Into the bound framebuffer, filling it."""
        p = self.program
        p.set("u_time", frame.time)
        p.set("u_aspect", frame.aspect)
        p.set("u_entropy", frame.scene.entropy)
        p.set("u_pulse", frame.scene.pulse)
        p.set("u_dither", dither.UNIT)  # the renderer's blue noise (gl/dither.py)
        set_palette(p, self.look)
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        self.vao.release()
