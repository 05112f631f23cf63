"""One frame: the neural web (the 3D scene at the render scale, bloom, its 2D panels) and/or the
architecture scene, then what every scene shows on top (prompt box, HUD, messages)."""

import math
import os
from functools import partial
from pathlib import Path

import moderngl
import numpy as np
import pygame

from visualizer.config import LookSettings, rgb
from visualizer.features import SceneState
from visualizer.gl.context import window_texture
from visualizer.gl.shaders import LiveVertexArray, ShaderLibrary
from visualizer.render.camera import Camera
from visualizer.render.diagram import Diagram, layout
from visualizer.render.layers import View, mvp_bytes
from visualizer.render.layers.architecture import ArchitectureView
from visualizer.render.layers.arcs import Arcs
from visualizer.render.layers.background import Background
from visualizer.render.layers.bloom import Bloom
from visualizer.render.layers.links import Links
from visualizer.render.layers.nodes import Nodes, path_dots
from visualizer.render.layers.panels import Overlay, Panels
from visualizer.render.layers.text import Painter
from visualizer.render.passes import PassTimes
from visualizer.safety.limiter import FlashLimiter


class Renderer:
    def __init__(self, ctx: moderngl.Context, look: LookSettings, limit_flashes: bool,
                 passes: PassTimes) -> None:  # fmt: skip
        """`limit_flashes`: hold what is drawn to three flashes a second (safety/limiter.py);
        `passes`: where each pass's time goes when it is measured."""
        self.ctx, self.look, self.passes = ctx, look, passes
        self.shaders = ShaderLibrary(ctx)
        self.background = Background(self.shaders, look)
        self.links = Links(self.shaders, look)
        self.arcs = Arcs(self.shaders, look)
        self.nodes = Nodes(self.shaders, look)
        self.bloom = Bloom(self.shaders, passes)
        self.painter = Painter(self.shaders)
        self.panels = Panels(self.painter, look)
        self._web_layers = (self.links, self.arcs, self.nodes)
        self.architecture = ArchitectureView(self.shaders, self.painter, look)
        self._diagram: Diagram | None = None
        self.limiter = FlashLimiter(self.shaders) if limit_flashes else None
        self._outgoing: moderngl.Framebuffer | None = None  # an outgoing look's frame, built
        self._crossfade: LiveVertexArray | None = None     # at the first soft cut into this

    def draw(
        self,
        fbo: moderngl.Framebuffer,
        size: tuple[int, int],
        scene: SceneState,
        overlay: Overlay,
        camera: Camera,
        time: float,
        scale: float = 1.0,
        detail: float = 1.0,
        limited: bool = True,
        fade_from: "Renderer | None" = None,
        fade: float = 0.0,
    ) -> None:
        """Draw everything into `fbo` (of `size` pixels): the neural web (its 3D part at
        `scale` × size), the architecture scene, or both while they crossfade; through the
        flash limiter when there is one, unless `limited` is False (a still image).
        `fade_from`: the look being left, drawn too and laid over this one with weight `fade`
        (a soft cut), before the flash limiter, which so sees the image that is shown."""
        self.painter.next_frame()
        mix, arch = overlay.scene_mix, overlay.architecture
        if arch is None:
            mix = 0.0
        limiter = self.limiter if limited else None
        out = limiter.frame(fbo, size, time) if limiter is not None else fbo
        if mix < 1.0:
            self._web(out, size, scene, overlay, camera, time, scale, detail)
        else:
            out.use()
            out.clear(*rgb(self.look.background), 1.0)
        if mix > 0.0:
            with self.passes.measure("architecture"):
                if self._diagram is None or (self._diagram.arch, self._diagram.size) != (
                        arch, size):  # fmt: skip
                    self._diagram = layout(arch, size)
                self.architecture.draw(self._diagram, scene, overlay, time, mix)
        with self.passes.measure("chrome"):
            self.panels.draw_chrome(scene, overlay, size, time)
        if fade_from is not None and fade > 0.0:
            outgoing = self._outgoing_frame(size)
            fade_from.draw(outgoing, size, scene, overlay, camera, time, scale, detail, False)
            with self.passes.measure("soft cut"):
                self._lay_over(out, size, outgoing.color_attachments[0], fade)
        if limiter is not None:
            with self.passes.measure("flash limiter"):
                limiter.finish(fbo, time)

    def _outgoing_frame(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        if self._outgoing is None or self._outgoing.size != size:
            if self._outgoing is not None:
                self._release_outgoing()
            texture = window_texture(self.ctx, size)  # drawn like the window
            self._outgoing = self.ctx.framebuffer(color_attachments=[texture])
            self._crossfade = self._crossfade or self.shaders.vertex_array("crossfade", [])
        return self._outgoing

    def _lay_over(self, out: moderngl.Framebuffer, size: tuple[int, int],
                  image: moderngl.Texture, weight: float) -> None:  # fmt: skip
        out.use()
        self.ctx.viewport = (0, 0, *size)
        self.ctx.disable(moderngl.DEPTH_TEST)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        image.use(0)
        program = self.shaders.get("crossfade")
        program.set("u_image", 0)
        program.set("u_weight", min(weight, 1.0))
        self._crossfade.render(moderngl.TRIANGLES, vertices=3)

    def _release_outgoing(self) -> None:
        for attachment in self._outgoing.color_attachments:
            attachment.release()
        self._outgoing.release()
        self._outgoing = None

    def _web(self, fbo, size, scene, overlay, camera, time, scale, detail) -> None:
        aspect = size[0] / size[1]
        matrix = camera.matrix(aspect)
        focal = 1 / math.tan(math.radians(40) / 2)
        view = View(
            mvp=mvp_bytes(matrix), scale=(focal / aspect, focal), aspect=aspect, time=time,
            pulse=scene.pulse, entropy=scene.entropy, detail=detail, render_scale=scale,
        )  # fmt: skip
        inner = (max(16, round(size[0] * scale)), max(16, round(size[1] * scale)))
        with self.passes.measure("web: 3D"):
            self.bloom.begin(inner)
            self.ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST)
            if scene.rows:
                self.ctx.enable(moderngl.BLEND)
                self.ctx.blend_func = moderngl.ONE, moderngl.ONE  # light adds up
                dots = path_dots(scene, self.look.history)  # the token path, nodes and links
                self.links.update(scene, dots)
                self.arcs.update(scene)
                self.nodes.update(scene, dots)
                for layer in self._web_layers:
                    layer.draw(view)
        backdrop = partial(self.background.draw, view)
        self.bloom.finish(fbo, self.look.glow, backdrop, *self.panels.band(size, scene),
                          overlay.split)  # fmt: skip
        with self.passes.measure("web: text"):
            self.panels.draw(scene, overlay, size, time, matrix)

    def release(self) -> None:
        for part in (*self._web_layers, self.background, self.bloom, self.architecture,
                     self.painter):
            part.release()
        if self.limiter is not None:
            self.limiter.release()
        if self._outgoing is not None:
            self._release_outgoing()
        if self._crossfade is not None:
            self._crossfade.release()
        self.shaders.release()


def render_poster(renderer: Renderer, size: tuple[int, int], scene: SceneState, overlay: Overlay,
                  camera: Camera, time: float, path: Path) -> None:  # fmt: skip
    """Draw the scene once more, offscreen at `size` and full render scale, into a PNG."""
    colour = renderer.ctx.renderbuffer(size)
    fbo = renderer.ctx.framebuffer(color_attachments=[colour])
    try:
        renderer.draw(fbo, size, scene, overlay, camera, time, limited=False)
        save_png(fbo, size, path)
    finally:
        fbo.release()
        colour.release()


def read_rgb(fbo: moderngl.Framebuffer, size: tuple[int, int]) -> np.ndarray:
    """The framebuffer as an [h, w, 3] uint8 image, top row first (for PNGs and tests)."""
    data = fbo.read(viewport=(0, 0, *size), components=3, alignment=1)
    return np.frombuffer(data, np.uint8).reshape(size[1], size[0], 3)[::-1]


def save_png(fbo: moderngl.Framebuffer, size: tuple[int, int], path: Path) -> None:
    """Write the framebuffer to `path` as a PNG, atomically (a temporary file, then rename)."""
    image = read_rgb(fbo, size)
    surface = pygame.image.frombuffer(np.ascontiguousarray(image).tobytes(), size, "RGB")
    tmp = path.with_name(f".{path.name}.partial.png")
    try:
        pygame.image.save(surface, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
