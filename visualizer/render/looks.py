"""The looks: the renderers of recent ones, kept built, the soft cut from one to the next (a
kiosk's rotation between presets, a reloaded preset), and the files a look is made of (shaders,
the preset), polled while it runs so that artists can tune them. Building a renderer costs a
shader compile and some memory that is not given back, so a kiosk turning between a few presets
reuses them."""

import time

import moderngl

from visualizer.config import PresetWatch, Settings
from visualizer.errors import UserError
from visualizer.features import SceneState
from visualizer.render.camera import Camera
from visualizer.render.hud import Hud
from visualizer.render.layers.alpha import AlphaPass
from visualizer.render.layers.layer import Overlay
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer

LOOK_FADE_S = 2.0  # a soft cut between looks
RENDERERS_KEPT = 4  # looks whose renderers stay built
POLL_S = 0.5  # shader and preset files are checked this often


def _key(settings: Settings) -> tuple:
    """What a renderer is built from: the look, the flash limit and the venue."""
    return settings.look, settings.safety, settings.venue


class Looks:
    def __init__(self, ctx: moderngl.Context, settings: Settings, passes: PassTimes, hud: Hud,
                 watch: PresetWatch | None, transparent: bool = False) -> None:  # fmt: skip
        """`hud`: where reloads and errors are said; `watch`: the preset file, if any;
        `transparent`: every look drawn over black without its backdrop, and given its alpha
        at the end (an alpha render: layers/alpha.py)."""
        self.ctx, self.passes, self.hud, self.watch = ctx, passes, hud, watch
        self.alpha = AlphaPass(ctx) if transparent else None
        self.current = self._build(settings)  # the renderer of the look on screen
        self._kept = {_key(settings): self.current}  # oldest first
        self._leaving: Renderer | None = None  # the look fading out, and how much is left
        self._leaving_weight = 0.0
        self._next_poll = 0.0

    def _build(self, settings: Settings) -> Renderer:
        return Renderer(self.ctx, settings.look, settings.safety.flash_limit, self.passes,
                        settings.venue)

    def switch(self, settings: Settings) -> None:
        """Cut softly to the look of `settings`, over LOOK_FADE_S, from the one on screen."""
        self._leaving, self._leaving_weight = self.current, 1.0
        key = _key(settings)
        renderer = self._kept.pop(key, None) or self._build(settings)
        self._kept[key] = renderer  # now the newest
        while len(self._kept) > RENDERERS_KEPT:  # the oldest kept is let go
            gone = self._kept.pop(next(iter(self._kept)))
            if gone is self._leaving:
                self._leaving, self._leaving_weight = None, 0.0
            gone.release()
        self.current = renderer

    def advance(self, dt: float) -> None:
        self._leaving_weight = max(0.0, self._leaving_weight - dt / LOOK_FADE_S)

    def draw(self, fbo: moderngl.Framebuffer, size: tuple[int, int], scene: SceneState,
             overlay: Overlay, camera: Camera, now: float, scale: float,
             detail: float, operator: bool) -> None:  # fmt: skip
        """The scene in the look on screen, with the look before it laid over while it fades;
        with the operator's chrome if `operator`; in an alpha render, then given its alpha."""
        self.current.draw(fbo, size, scene, overlay, camera, now, scale, detail,
                          fade_from=self._leaving, fade=self._leaving_weight,
                          transparent=self.alpha is not None, operator=operator)  # fmt: skip
        if self.alpha is not None:
            with self.passes.measure("alpha"):
                self.alpha.finish(fbo, size)

    def operator(self, fbo: moderngl.Framebuffer) -> None:
        """The operator's chrome over the frame just drawn (Renderer.operator)."""
        self.current.operator(fbo)

    def poll(self, now_or_never: bool = False) -> Settings | None:
        """Reload changed shaders, and return the preset's new settings if its file changed;
        every POLL_S seconds (`now_or_never`: at once). A bad edit is said on screen, with its
        file and line, and changes nothing."""
        now = time.perf_counter()
        if now < self._next_poll and not now_or_never:
            return None
        self._next_poll = now + POLL_S
        shaders = self.current.shaders
        for name in shaders.reload_changed():
            self.hud.notify(f"reloaded shaders/{name}.glsl")
        self.hud.log_shader_errors(shaders.errors)
        if self.watch is None:
            return None
        try:
            settings = self.watch.changed()
        except UserError as exc:  # a bad edit: say where, keep what runs
            self.hud.notify(str(exc))
            return None
        if settings is not None:
            self.hud.notify(f"reloaded {self.watch.path.name}")
        return settings

    def release(self) -> None:
        for renderer in self._kept.values():
            renderer.release()
        self._kept.clear()
        if self.alpha is not None:
            self.alpha.release()
            self.alpha = None
