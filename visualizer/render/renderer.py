"""One frame: the neural web (the 3D scene at the render scale, bloom, its 2D words) and/or the
architecture scene, then what every scene shows on top, and the operator's chrome (prompt box,
HUD, messages) where it is asked for, each drawn by the layers of LAYERS in their stage; and the
passes that are not layers (the bloom, a soft cut's crossfade, the flash limiter), which take
the whole image at once."""

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import moderngl
import numpy as np
import pygame

from visualizer.config import LookSettings, VenueSettings, rgb
from visualizer.features import SceneState
from visualizer.gl import dither
from visualizer.gl.context import window_texture
from visualizer.gl.shaders import LiveVertexArray, ShaderLibrary
from visualizer.render.camera import Camera
from visualizer.render.layers.architecture import ArchitectureView
from visualizer.render.layers.arcs import Arcs
from visualizer.render.layers.background import Background
from visualizer.render.layers.blackout import Blackout
from visualizer.render.layers.bloom import Bloom
from visualizer.render.layers.chrome import Chrome
from visualizer.render.layers.layer import STAGES, Kit, Layer, LayerInput, Overlay, Stage
from visualizer.render.layers.links import Links
from visualizer.render.layers.nodes import Nodes
from visualizer.render.layers.operator import Operator
from visualizer.render.layers.room import Room
from visualizer.render.layers.safe_area import SafeArea
from visualizer.render.layers.text import Painter
from visualizer.render.layers.web_text import WebText, answer_band
from visualizer.render.passes import PassTimes
from visualizer.safety.limiter import FlashLimiter

# every layer, built as Layer(kit); within a stage (layer.STAGES) they draw in this order
LAYERS: tuple[Callable[[Kit], Layer], ...] = (
    Links, Arcs, Nodes, Background, WebText, ArchitectureView, Chrome, SafeArea, Blackout,
    Operator,
)  # fmt: skip


class Renderer:
    def __init__(self, ctx: moderngl.Context, look: LookSettings, limit_flashes: bool,
                 passes: PassTimes, venue: VenueSettings | None = None) -> None:  # fmt: skip
        """`limit_flashes`: hold what is drawn to three flashes a second (safety/limiter.py);
        `passes`: where each pass's time goes when it is measured; `venue`: the room (type
        sizes; a desk's by default)."""
        self.ctx, self.look, self.passes = ctx, look, passes
        self.venue = venue or VenueSettings()
        self.shaders = ShaderLibrary(ctx)
        self.painter = Painter(self.shaders)
        kit = Kit(self.shaders, self.painter, look, self.venue)
        self.layers: tuple[Layer, ...] = tuple(make(kit) for make in LAYERS)
        self._stages = {stage: [layer for layer in self.layers if layer.stage == stage]
                        for stage in STAGES}  # fmt: skip
        self.bloom = Bloom(self.shaders, passes)
        self.limiter = (FlashLimiter(self.shaders, self.venue.nearest_viewer) if limit_flashes
                        else None)  # fmt: skip
        self._outgoing: moderngl.Framebuffer | None = None  # an outgoing look's frame, built
        self._crossfade: LiveVertexArray | None = None     # at the first soft cut into this
        self._drawn: LayerInput | None = None  # the last frame drawn (for `operator`)
        self.dither = dither.dither_texture(ctx)  # bound at dither.UNIT while drawing

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
        transparent: bool = False,
        operator: bool = True,
    ) -> None:
        """Draw everything into `fbo` (of `size` pixels): the neural web (its 3D part at
        `scale` × size), the architecture scene, or both while they crossfade; through the
        flash limiter when there is one, unless `limited` is False (a still image).
        `fade_from`: the look being left, drawn too and laid over this one with weight `fade`
        (a soft cut), before the flash limiter, which so sees the image that is shown.
        `transparent`: over black, without the backdrop (an alpha render's picture, to which
        layers/alpha.py then gives its alpha). `operator`: the operator's chrome too, over the
        picture before the flash limiter; without it, the audience's picture (`operator` may
        draw the chrome over it later, once a recording has taken it)."""
        self.painter.next_frame()
        self.dither.use(dither.UNIT)
        frame = LayerInput(size, scene, overlay, camera, time, scale, detail, self.look.history)
        self._drawn = frame
        mix = overlay.scene_mix if overlay.architecture is not None else 0.0
        limiter = self.limiter if limited else None
        out = limiter.frame(fbo, size, time) if limiter is not None else fbo
        if mix < 1.0:
            self._web(out, frame, transparent)
        else:
            out.use()
            out.clear(*((0.0,) * 3 if transparent else rgb(self.look.background)), 1.0)
        if mix > 0.0:
            with self.passes.measure("architecture"):
                self._stage("architecture", frame)
        with self.passes.measure("chrome"):
            self._stage("chrome", frame)
        if fade_from is not None and fade > 0.0:
            outgoing = self._outgoing_frame(size)
            fade_from.draw(outgoing, size, scene, overlay, camera, time, scale, detail, False,
                           transparent=transparent, operator=False)  # fmt: skip
            with self.passes.measure("soft cut"):
                self._lay_over(out, size, outgoing.color_attachments[0], fade)
        if operator:
            self.operator(out)
        if limiter is not None:
            with self.passes.measure("flash limiter"):
                limiter.finish(fbo, time)

    def operator(self, fbo: moderngl.Framebuffer) -> None:
        """The operator's chrome (layers/operator.py) over the frame last drawn, in `fbo`."""
        if self._drawn is None:
            return
        with self.passes.measure("operator"):
            fbo.use()
            self.ctx.viewport = (0, 0, *self._drawn.size)
            self.ctx.disable(moderngl.DEPTH_TEST)
            self._stage("operator", self._drawn)

    def _stage(self, stage: Stage, frame: LayerInput) -> None:
        """The stage's layers: each prepares this frame, then each draws it."""
        layers = self._stages[stage]
        for layer in layers:
            layer.update(frame)
        for layer in layers:
            layer.draw(frame)

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

    def _web(self, fbo: moderngl.Framebuffer, frame: LayerInput, transparent: bool) -> None:
        """The light at the render scale, bloomed over the backdrop (`transparent`: over black)
        onto `fbo` (the bloom also darkens the band under the answer: see
        web_text.answer_band), then the web's words."""
        size, scale = frame.size, frame.render_scale
        inner = (max(16, round(size[0] * scale)), max(16, round(size[1] * scale)))
        with self.passes.measure("web: 3D"):
            self.bloom.begin(inner)
            self.ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST)
            if frame.scene.rows:  # no light before the first token
                self.ctx.enable(moderngl.BLEND)
                self.ctx.blend_func = moderngl.ONE, moderngl.ONE  # light adds up
                self._stage("light", frame)
        band = answer_band(self.look, Room.of(size, self.venue), frame)
        backdrop = self._black if transparent else partial(self._stage, "backdrop", frame)
        self.bloom.finish(fbo, self.look.glow, backdrop, *band, frame.overlay.split)
        with self.passes.measure("web: text"):
            self._stage("web", frame)

    def _black(self) -> None:
        """No backdrop: the glow layer as the bloom left it, or black without a bloom."""
        if self.look.glow <= 0:
            self.ctx.clear(0.0, 0.0, 0.0, 1.0)

    def release(self) -> None:
        for part in (*self.layers, self.bloom, self.painter):
            part.release()
        if self.limiter is not None:
            self.limiter.release()
        if self._outgoing is not None:
            self._release_outgoing()
        if self._crossfade is not None:
            self._crossfade.release()
        self.dither.release()
        self.shaders.release()


def render_poster(renderer: Renderer, size: tuple[int, int], scene: SceneState, overlay: Overlay,
                  camera: Camera, time: float, path: Path) -> None:  # fmt: skip
    """Draw the scene once more, offscreen at `size` and full render scale, into a PNG."""
    colour = renderer.ctx.renderbuffer(size)
    fbo = renderer.ctx.framebuffer(color_attachments=[colour])
    try:
        renderer.draw(fbo, size, scene, overlay, camera, time, limited=False, operator=False)
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
