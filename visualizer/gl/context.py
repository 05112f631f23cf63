"""Where frames go: a pygame OpenGL window, or an offscreen framebuffer through EGL (no display).

Both give the loop the same things: a moderngl context, the target framebuffer and its size,
present(), and the window's events.
"""

import ctypes
import ctypes.util
import os
import warnings
from functools import cache

import moderngl

GL_VERSION = 330
INVISIBLE_DRIVERS = ("offscreen", "dummy")


def is_software(ctx: moderngl.Context) -> bool:
    """OpenGL rendered by the CPU (Mesa's llvmpipe or softpipe), sharing it with the model."""
    renderer = ctx.info.get("GL_RENDERER", "").lower()
    return "llvmpipe" in renderer or "softpipe" in renderer


def window_texture(ctx: moderngl.Context, size: tuple[int, int]) -> moderngl.Texture:
    """An RGBA8 texture stored as a window stores its pixels. On llvmpipe that is BGRA, and
    then, with no depth buffer on the target, its linear rasterizer copies or filters such a
    texture onto a window (or onto another like it) without shading each pixel, when the draw
    is a plain texture read: a bilinear 640x360 -> 1280x720 upscale takes 1.6-2.2 ms against
    3.2-3.6, a copy at 720p 0.8 ms against 2.3. Reads and writes through moderngl stay RGBA;
    Mesa converts."""
    texture = ctx.texture(size, 4)
    gl = _gl() if is_software(ctx) else None
    if gl is not None:  # the same texture name, respecified from BGRA bytes: Mesa keeps that order
        texture.use(0)
        gl.glTexImage2D(_TEXTURE_2D, 0, _RGBA, size[0], size[1], 0, _BGRA, _UNSIGNED_BYTE, None)
    return texture


_TEXTURE_2D, _RGBA, _BGRA, _UNSIGNED_BYTE = 0x0DE1, 0x1908, 0x80E1, 0x1401


@cache
def _gl() -> ctypes.CDLL | None:
    """The GL library that the current context's calls dispatch through (GLVND's)."""
    for name in ("OpenGL", "GL"):
        path = ctypes.util.find_library(name)
        if path:
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


class WindowUnavailable(Exception):
    """No display, or the window could not be created; the message says which."""


class HeadlessTarget:
    """An offscreen RGBA8 framebuffer in a standalone EGL context."""

    interactive = False

    def __init__(self, size: tuple[int, int], like_a_window: bool = False) -> None:
        """`like_a_window`: the bench's stand-in for a window. Each present waits for the
        frame, as a window's swap does (the bench's and the governor's frame times count the
        whole frame), and the app treats it as interactive: it draws on while the model loads
        rather than waiting for it. Otherwise (a video) the next frame's Python runs while this
        one rasterizes, and the recording's read-back ring waits only for frames two behind."""
        self.ctx = moderngl.create_standalone_context(backend="egl", require=GL_VERSION)
        self.size, self.like_a_window = size, like_a_window
        self.interactive = like_a_window
        # stored as a window stores its pixels (BGRA: see window_texture), or as a video reads them
        if like_a_window:
            self._colour = window_texture(self.ctx, size)
        else:
            self._colour = self.ctx.texture(size, 4)
        self.fbo = self.ctx.framebuffer(color_attachments=[self._colour])

    def events(self) -> list:
        return []

    def waiting(self) -> bool:
        """Input waiting to be taken (none offscreen)."""
        return False

    def present(self) -> None:
        if self.like_a_window:
            self.ctx.finish()

    def close(self) -> None:
        self.fbo.release()
        self._colour.release()
        self.ctx.release()


class WindowTarget:
    """A resizable pygame window with an OpenGL 3.3 core context."""

    interactive = True

    def __init__(self, size: tuple[int, int], fullscreen: bool, vsync: bool, title: str,
                 display: int = 0) -> None:  # fmt: skip
        """`display`: which screen, when there are several (a kiosk's)."""
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise WindowUnavailable("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        import pygame

        try:
            pygame.display.init()
        except pygame.error as exc:
            raise WindowUnavailable(f"the display cannot be used: {exc}") from None
        if pygame.display.get_driver() in INVISIBLE_DRIVERS:  # SDL's fallback: nobody would see it
            pygame.display.quit()
            display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            raise WindowUnavailable(f"the display {display} cannot be opened")
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MAJOR_VERSION, 3)
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MINOR_VERSION, 3)
        pygame.display.gl_set_attribute(
            pygame.GL_CONTEXT_PROFILE_MASK, pygame.GL_CONTEXT_PROFILE_CORE
        )
        # no depth or stencil buffer (nothing uses them): with one, llvmpipe cannot use its fast
        # path for full-size copies onto the window (see window_texture)
        pygame.display.gl_set_attribute(pygame.GL_DEPTH_SIZE, 0)
        pygame.display.gl_set_attribute(pygame.GL_STENCIL_SIZE, 0)
        flags = pygame.OPENGL | pygame.DOUBLEBUF | pygame.RESIZABLE
        if fullscreen:
            flags |= pygame.FULLSCREEN | pygame.NOFRAME
            size = (0, 0)  # the display's own resolution
        display = min(display, max(pygame.display.get_num_displays() - 1, 0))
        try:
            with warnings.catch_warnings():  # "vsync not available" (e.g. Xvfb): frames still flow
                warnings.simplefilter("ignore")
                pygame.display.set_mode(size, flags, vsync=int(vsync), display=display)
            self.ctx = moderngl.create_context(require=GL_VERSION)
        except Exception as exc:  # pygame.error, or the GL driver's own (no GLX, no GL 3.3)
            pygame.display.quit()
            raise WindowUnavailable(f"the window cannot open: {exc}") from None
        pygame.display.set_caption(title)
        pygame.key.start_text_input()
        self._pygame = pygame
        self.fbo = self.ctx.detect_framebuffer()
        self.size = pygame.display.get_window_size()

    def events(self) -> list:
        events = self._pygame.event.get()
        for event in events:
            if event.type in (self._pygame.VIDEORESIZE, self._pygame.WINDOWSIZECHANGED):
                self.size = self._pygame.display.get_window_size()
                self.fbo = self.ctx.detect_framebuffer()
        return events

    def waiting(self) -> bool:
        """Input waiting to be taken (a key, the mouse, the window asked to draw again)."""
        return bool(self._pygame.event.peek())

    def toggle_fullscreen(self) -> None:
        self._pygame.display.toggle_fullscreen()
        self.size = self._pygame.display.get_window_size()
        self.fbo = self.ctx.detect_framebuffer()

    def present(self) -> None:
        self._pygame.display.flip()

    def close(self) -> None:
        self.ctx.release()
        self._pygame.display.quit()
