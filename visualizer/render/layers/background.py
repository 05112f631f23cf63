"""The animated backdrop (shaders/background.glsl). It is a smooth field, so the bloom draws it
at a quarter of the render scale into its glow layer (a full-size pass of it cost llvmpipe as
much as all the 3D layers together)."""

import moderngl

from visualizer.config import LookSettings, rgb
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.layers import View


class Background:
    def __init__(self, shaders: ShaderLibrary, look: LookSettings) -> None:
        self.program = shaders.get("background")
        self.vao = shaders.vertex_array("background", [])
        self.look = look

    def draw(self, view: View) -> None:
        """Into the bound framebuffer, filling it."""
        p, look = self.program, self.look
        p.set("u_time", view.time)
        p.set("u_aspect", view.aspect)
        p.set("u_entropy", view.entropy)
        p.set("u_pulse", view.pulse)
        p.set("u_background", rgb(look.background))
        p.set("u_cold", rgb(look.cold))
        p.set("u_warm", rgb(look.warm))
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        self.vao.release()
