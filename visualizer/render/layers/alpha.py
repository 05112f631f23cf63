"""The pass that gives an alpha render (`neuroweb render --alpha`) its alpha: the finished
picture, drawn over black without the backdrop (Renderer.draw's `transparent`), is copied and
drawn back as light with a coverage (shaders/unmultiply.glsl): alpha its brightest channel,
colour the light divided by it. The background is 0, the glow's soft edges lie between, and
an editor laying it over footage sees the same picture over black (docs/recording.md)."""

import moderngl

from visualizer.gl.shaders import ShaderLibrary


class AlphaPass:
    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.shaders = ShaderLibrary(ctx)
        self._vao = self.shaders.vertex_array("unmultiply", [])
        self._copy: moderngl.Texture | None = None

    def finish(self, fbo: moderngl.Framebuffer, size: tuple[int, int]) -> None:
        """`fbo`'s picture, `size` pixels, given its alpha in place."""
        if self._copy is None or self._copy.size != size:
            if self._copy is not None:
                self._copy.release()
            self._copy = self.ctx.texture(size, 4)
        self.ctx.copy_framebuffer(self._copy, fbo)
        fbo.use()
        self.ctx.viewport = (0, 0, *size)
        self.ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST)
        self._copy.use(0)
        self.shaders.get("unmultiply").set("u_image", 0)
        self._vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        if self._copy is not None:
            self._copy.release()
        self._vao.release()
        self.shaders.release()
