"""The scene's visuals, one per module, each a `Layer` (layer.py: one interface for all); and
what several layers use to draw: antialiased lines and per-instance buffers."""

from collections.abc import Iterator
from contextlib import contextmanager

import moderngl
import numpy as np

from visualizer.config import LookSettings, rgb
from visualizer.gl.shaders import LiveProgram, LiveVertexArray, ShaderLibrary

LINE_SMOOTH = 0x0B20  # GL_LINE_SMOOTH, which moderngl has no flag for
PALETTE = ("background", "cold", "warm", "hot", "accent")  # the look's colours the shaders take
LINE_PX = 2.0  # the web's lines at 1080p, in pixels
LINE_LIGHT = 1.4  # their light per length, in one-pixel lines at full intensity


def set_palette(program: LiveProgram, look: LookSettings) -> None:
    """The look's colours as `u_<name>`: each program takes those of them it uses."""
    for name in PALETTE:
        program.set(f"u_{name}", rgb(getattr(look, name)))


def set_lines(ctx: moderngl.Context, program: LiveProgram, height: int, render_scale: float
              ) -> None:  # fmt: skip
    """The web's lines LINE_PX wide in an output 1080 pixels high (in proportion to `height`
    at other sizes, never under one pixel at the render scale): a one-pixel line breaks up in
    H.264, whose 4:2:0 keeps colour at half resolution. Their light (`u_gain`) is set so that
    a line adds the same light per length of the picture at every render scale: LINE_LIGHT
    times a one-pixel line's at full scale, so a lower scale neither brightens nor blows out
    the web."""
    width = max(1.0, LINE_PX * height * render_scale / 1080)
    ctx.line_width = width
    program.set("u_gain", LINE_LIGHT * render_scale / width)


@contextmanager
def smooth_lines(ctx: moderngl.Context, on: bool = True) -> Iterator[None]:
    """Lines drawn antialiased (while `on`), their coverage weighting the light they add: below
    render scale 1 a one-pixel line is otherwise a staircase of dots once upscaled. The
    attention arcs are drawn so there (about 0.4 ms more of the 3D pass at 720p, scale 0.3),
    not at scale 1 (a video's, where they cost 4-7 % of its render); the links, whose
    staircase the dense tower hides, never (8-15 % of a whole frame at scale 0.3). The
    scene's additive blending (ONE, ONE) is set again after."""
    if not on:
        yield
        return
    ctx.enable_direct(LINE_SMOOTH)
    ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE
    try:
        yield
    finally:
        ctx.disable_direct(LINE_SMOOTH)
        ctx.blend_func = moderngl.ONE, moderngl.ONE


def per_vertex(shaders: ShaderLibrary, values: np.ndarray, fmt: str, name: str
               ) -> tuple[moderngl.Buffer, list]:  # fmt: skip
    """A constant buffer that every instance repeats (a line's two ends, a sprite's corners, an
    arc's steps), and its entry for `Instances`."""
    buffer = shaders.ctx.buffer(np.ascontiguousarray(values, np.float32).tobytes())
    return buffer, [(buffer, fmt, name)]


class Instances:
    """Per-instance data for one program, in a buffer that grows as needed, with the vertex
    array that draws it (rebuilt when the buffer grows or the shader is reloaded)."""

    def __init__(
        self, shaders: ShaderLibrary, program: str, per_vertex: list, layout: str, *names: str
    ) -> None:
        self.ctx, self._shaders, self._program = shaders.ctx, shaders, program
        self._per_vertex, self._layout, self._names = per_vertex, layout, names
        self._buffer = None
        self._vao: LiveVertexArray | None = None

    def draw(self, data: np.ndarray, mode: int, vertices: int) -> None:
        """Upload `data` [instances, floats] and draw every row as one instance."""
        if len(data) == 0:
            return
        raw = np.ascontiguousarray(data, dtype=np.float32).tobytes()
        if self._buffer is None or self._buffer.size < len(raw):
            self.release()
            self._buffer = self.ctx.buffer(reserve=len(raw) * 2, dynamic=True)
            content = [*self._per_vertex, (self._buffer, self._layout, *self._names)]
            self._vao = self._shaders.vertex_array(self._program, content)
        self._buffer.orphan()  # fresh storage: a draw still reading the old never waits us
        self._buffer.write(raw)
        self._vao.render(mode, vertices=vertices, instances=len(data))

    def release(self) -> None:
        if self._vao is not None:
            self._vao.release()
        if self._buffer is not None:
            self._buffer.release()
        self._vao = self._buffer = None
