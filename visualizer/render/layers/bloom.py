"""The scene's offscreen target and the bloom post-pass.

The 3D scene's light renders into an RGBA8 texture at the governor's render scale (llvmpipe is
fill-rate bound, and blends half floats 1.5× slower than bytes); bright parts are downsampled to
a quarter of that and blurred, and the backdrop is added to them at that quarter size (the glow
layer); the composite pass adds the glow layer to the light and finishes it (tone map, the
answer's band), still at the render scale; only the final upscale touches every pixel of the
target, with one filtered read each. On llvmpipe that read is drawn as a scene of its own, so
that it stays on the linear rasterizer (see _upscale).
"""

from collections.abc import Callable

import moderngl

from visualizer.gl import dither
from visualizer.gl.context import is_software, window_texture
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.passes import PassTimes

BLOOM_DIVISOR = 4
THRESHOLD = 0.35
EXPOSURE = 1.4


class Bloom:
    def __init__(self, shaders: ShaderLibrary, passes: PassTimes) -> None:
        self.ctx, self.passes = shaders.ctx, passes
        self._bright = shaders.get("bright")
        self._blur = shaders.get("blur")
        self._shaders = shaders
        self._vaos = {name: shaders.vertex_array(name, []) for name in ("bright", "blur")}
        self.size = (0, 0)
        self._textures: list[moderngl.Texture] = []
        self._fbos: list[moderngl.Framebuffer] = []
        self._software = is_software(self.ctx)

    def _allocate(self, size: tuple[int, int]) -> None:
        self._free()
        small = (max(1, size[0] // BLOOM_DIVISOR), max(1, size[1] // BLOOM_DIVISOR))
        for i, s in enumerate((size, small, small, size)):
            # the last is what the upscale reads (see window_texture)
            texture = window_texture(self.ctx, s) if i == 3 else self.ctx.texture(s, 4)
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            texture.repeat_x = texture.repeat_y = False
            self._textures.append(texture)
            self._fbos.append(self.ctx.framebuffer(color_attachments=[texture]))
        self.size = size

    def begin(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        """The scene's framebuffer at `size` (the render scale), cleared and bound; the layers
        add their light into it."""
        if size != self.size:
            self._allocate(size)
        scene = self._fbos[0]
        scene.use()
        scene.clear(0.0, 0.0, 0.0, 1.0)
        return scene

    def finish(
        self,
        target: moderngl.Framebuffer,
        glow: float,
        backdrop: Callable[[], None],
        band_top: float,
        band_shade: float,
        split: float = 0.0,
    ) -> None:
        """Bloom the scene (`glow` × its highlights), lay it over what `backdrop` draws (into
        the bound framebuffer) and draw the result onto `target` (its full size), darkening the
        bottom `band_top` (a fraction of the height) by `band_shade`, and splitting red from
        blue by `split` (a share of the width)."""
        self.ctx.disable(moderngl.BLEND)
        scene, glow_layer, _, final = self._textures
        direct = self.size == target.size  # composing first would only add a full-size pass
        band = (band_top, band_shade)
        with self.passes.measure("web: bloom"):
            self._glow_layer(glow, backdrop)
            if not direct:
                self._compose(band, split)
        with self.passes.measure("web: upscale"):
            self._upscale(target, scene if direct else final, glow_layer, direct, band, split)

    def _upscale(self, target: moderngl.Framebuffer, image: moderngl.Texture,
                 glow_layer: moderngl.Texture, direct: bool, band: tuple[float, float],
                 split: float) -> None:  # fmt: skip
        """The one full-size pass: see upscale.glsl and copy.glsl. Below render scale 1 the
        composite has split the colours already."""
        target.use()
        image.use(0)
        glow_layer.use(1)
        upscale, vao = self._variant(
            ("upscale+SPLIT" if split > 0 else "upscale") if direct else "copy")
        upscale.set("u_image", 0)
        upscale.set("u_glow", 1)
        upscale.set("u_split", split)
        if direct:  # no composite pass finished the light: this one does
            _finish_uniforms(upscale, band)
        vao.render(moderngl.TRIANGLES, vertices=3)
        if self._software and not direct:
            # llvmpipe draws a scene (what is drawn between flushes) on its linear rasterizer
            # only if every draw in it is a plain read: with the text's quads in the same scene
            # the upscale was shaded pixel by pixel (upscale and text at 720p: 4.2 ms against
            # 1.8-2.8 drawn apart). On a CPU renderer a finish is no stall: a flush rasterizes
            # the scene before it returns.
            self.ctx.finish()

    def _glow_layer(self, glow: float, backdrop: Callable[[], None]) -> None:
        """glow × the scene's blurred highlights + the backdrop, at a quarter of the render
        scale, into texture 1."""
        scene, a, b, _ = self._textures
        if glow > 0:
            self._fbos[1].use()
            scene.use(0)
            self._bright.set("u_scene", 0)
            self._bright.set("u_texel", (1 / scene.width, 1 / scene.height))
            self._bright.set("u_threshold", THRESHOLD)
            self._vaos["bright"].render(moderngl.TRIANGLES, vertices=3)
            passes = ((a, 2, (1 / a.width, 0.0), 1.0), (b, 1, (0.0, 1 / a.height), glow))
            for source, dest, step, gain in passes:
                self._fbos[dest].use()
                source.use(0)
                self._blur.set("u_source", 0)
                self._blur.set("u_step", step)
                self._blur.set("u_gain", gain)
                self._vaos["blur"].render(moderngl.TRIANGLES, vertices=3)
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.ONE, moderngl.ONE
        else:
            self._fbos[1].use()
        backdrop()
        self.ctx.disable(moderngl.BLEND)

    def _compose(self, band: tuple[float, float], split: float) -> None:
        """The light + the glow layer at the render scale, finished, its colours split by
        `split` (see composite.glsl)."""
        scene, a, _, _ = self._textures
        self._fbos[3].use()
        scene.use(0)
        a.use(1)
        composite, vao = self._variant("composite+SPLIT" if split > 0 else "composite")
        composite.set("u_scene", 0)
        composite.set("u_glow", 1)
        composite.set("u_split", split)
        _finish_uniforms(composite, band)
        vao.render(moderngl.TRIANGLES, vertices=3)

    def _variant(self, name: str):
        """The full-screen program `name` (a variant such as "composite+SPLIT" is compiled the
        first time it is asked for) and its vertex array."""
        if name not in self._vaos:
            self._vaos[name] = self._shaders.vertex_array(name, [])
        return self._shaders.get(name), self._vaos[name]

    def _free(self) -> None:
        for thing in (*self._fbos, *self._textures):
            thing.release()
        self._fbos, self._textures = [], []

    def release(self) -> None:
        self._free()
        for vao in self._vaos.values():
            vao.release()


def _finish_uniforms(program, band: tuple[float, float]) -> None:
    """shaders/lib/finish.glsl's uniforms: the exposure, the answer band's top and shade, and
    the dither's unit (the renderer binds its texture there)."""
    program.set("u_dither", dither.UNIT)
    program.set("u_exposure", EXPOSURE)
    program.set("u_band_top", band[0])
    program.set("u_band_shade", band[1])
