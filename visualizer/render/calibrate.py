"""`neuroweb calibrate`: a still slate for setting up a venue's projector or screen in ten
seconds, in a window (F: fullscreen, Esc or Q: close) or as a PNG (`--out`).

On black, inside a frame at the picture's edge (a projector that overscans cuts it off):
- a grey ramp in 2 % steps of the signal, 0 to 100 % (51 patches): brightness is right when
  the 2 % patch parts from black, contrast when 98 % parts from white;
- the 5 % graphics-safe area's frame (render/layers/room.py): every text and panel of the
  scenes lies inside it, so all of it must be on the wall;
- a line of text at the venue's smallest size (its farthest viewer ÷ 200 of the height, from
  the preset's `[venue]`): read it from the back row;
- colour bars at 100 %: white, yellow, cyan, green, magenta, red, blue.
Nothing moves and nothing flashes: the same picture is drawn whenever the window asks.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from visualizer.config import Settings, VenueSettings
from visualizer.errors import UserError
from visualizer.paths import check_output_path

if TYPE_CHECKING:  # the GL layers are imported when it is drawn, not when the command line starts
    from visualizer.render.layers.room import Room

STEPS = 51  # 0, 2, …, 100 % of the signal
BARS = ((1, 1, 1), (1, 1, 0), (0, 1, 1), (0, 1, 0), (1, 0, 1), (1, 0, 0), (0, 0, 1))
RAMP, COLOURS = (0.30, 0.46), (0.58, 0.72)  # the bands' top and bottom, of the height
LINE = 0.78  # the smallest text's top, of the height


def add_calibrate(sub, command: Callable, run: Callable, size: Callable) -> None:
    """The `calibrate` sub-command, run by `run`, with the command line's own helpers:
    `command` makes it, `size` reads WIDTHxHEIGHT."""
    p = command(sub, "calibrate", run, "a slate for setting up a venue's projector: grey ramp, "
                "safe area, the smallest text, colour bars")  # fmt: skip
    p.add_argument("--preset", default="default", help="preset name or .toml: its [venue]")
    p.add_argument("--out", type=Path, help="write it to this .png instead of a window")
    p.add_argument("--size", type=size, default=(1920, 1080), help="WIDTHxHEIGHT of --out")


def calibrate(args: argparse.Namespace) -> int:
    from visualizer.config import load_settings

    settings = load_settings(args.preset)
    if args.out is None:
        return _window(settings, args.preset)
    if args.out.suffix.lower() != ".png":
        raise UserError(f"calibrate: --out {args.out}: expected a .png file name")
    check_output_path(args.out)
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.renderer import save_png

    target = HeadlessTarget(args.size)
    try:
        Slate(target.ctx, settings.venue, args.preset).draw(target.fbo, args.size)
        save_png(target.fbo, args.size, args.out)
    except OSError as exc:
        raise UserError(f"calibrate: --out {args.out}: cannot write: {exc.strerror}") from None
    finally:
        target.close()
    print(f"neuroweb: saved {args.out}", file=sys.stderr)
    return 0


def _window(settings: Settings, preset: str) -> int:
    import pygame

    from visualizer.gl.context import WindowTarget, WindowUnavailable

    w = settings.window
    try:
        target = WindowTarget((w.width, w.height), w.fullscreen, w.vsync, "neuroweb calibrate")
    except WindowUnavailable as exc:
        raise UserError(f"calibrate: {exc} (--out slate.png writes it to a file)") from None
    slate = Slate(target.ctx, settings.venue, preset)
    try:
        while True:  # drawn again only when the window asks: resized, shown, a key
            slate.draw(target.fbo, target.size)
            target.present()
            event = pygame.event.wait()
            target.events()  # the size, after a resize
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in (
                    pygame.K_ESCAPE, pygame.K_q)):  # fmt: skip
                return 0
            if event.type == pygame.KEYDOWN and event.key == pygame.K_f:
                target.toggle_fullscreen()
    finally:
        slate.release()
        target.close()


class Slate:
    """The slate, drawn with the shared painter (render/layers/text.py)."""

    def __init__(self, ctx, venue: VenueSettings, name: str) -> None:
        from visualizer.gl.shaders import ShaderLibrary
        from visualizer.render.layers.text import Painter

        self.ctx, self.venue, self.name = ctx, venue, name
        self.shaders = ShaderLibrary(ctx)
        self.painter = Painter(self.shaders)

    def smallest(self, room: "Room") -> int:
        """The venue's smallest type, in pixels: a size whose tallest glyph (a bar, "|",
        from its ascender to its descender) is at least the room's floor."""
        import numpy as np
        import pygame

        fonts, floor = self.painter.fonts, room.floor * room.size[1]
        size = room.least
        while size < 2 * room.least:  # its rows more than half lit, as they are drawn
            alpha = pygame.surfarray.array_alpha(fonts.get(size).render("|", True, (255,) * 3))
            if np.count_nonzero(alpha.max(0) > 128) >= floor:
                break
            size += 1
        return size

    def draw(self, fbo, size: tuple[int, int]) -> None:
        from visualizer.render.layers.room import Room

        w, h = size
        room, p = Room.of(size, self.venue), self.painter
        fbo.use()
        self.ctx.viewport = (0, 0, w, h)
        fbo.clear(0.0, 0.0, 0.0, 1.0)
        p.next_frame()
        p.begin(size)
        t, small = room.stroke, self.smallest(room)
        grey, white = (0.5, 0.5, 0.5, 1.0), (1.0, 1.0, 1.0, 1.0)
        _frame(p, 0, 0, w, h, t, grey)  # the picture's edge: cut off where it overscans
        _frame(p, room.left, room.top, room.width, room.bottom - room.top, t, white)
        p.text("5 % safe area", room.left + 2 * t, room.top + 2 * t, small, white)
        v = self.venue
        title = (f"{self.name}: back row at {v.farthest_viewer:g}, front row at "
                 f"{v.nearest_viewer:g} screen heights{', projector' if v.projector else ''}")
        p.text(title, room.left + 2 * t, room.top + 0.06 * h, room.type(0.03), white, bold=True)
        top, bottom = RAMP[0] * h, RAMP[1] * h
        step = (room.width - 4 * t) / STEPS
        for k in range(STEPS):
            x = room.left + 2 * t + k * step
            p.rect(x, top, step + 0.5, bottom - top, (k / (STEPS - 1),) * 3 + (1.0,))
            if k % 5 == 0:
                p.text(f"{2 * k}", x + step / 2, bottom + 0.3 * small, small, white,
                       anchor="center")  # fmt: skip
        p.text("brightness: 2 % parts from 0 %   contrast: 98 % parts from 100 %",
               room.left + 2 * t, top - 1.5 * small, small, white)  # fmt: skip
        bar = (room.width - 4 * t) / len(BARS)
        for i, colour in enumerate(BARS):
            p.rect(room.left + 2 * t + i * bar, COLOURS[0] * h, bar + 0.5,
                   (COLOURS[1] - COLOURS[0]) * h, (*map(float, colour), 1.0))  # fmt: skip
        line = (f"| the smallest text: {100 * room.floor:.3g} % of the height, {small} px; read "
                f"it from the back row |")  # fmt: skip
        p.text(line, room.left + 2 * t, LINE * h, small, white)
        p.flush()

    def release(self) -> None:
        self.painter.release()
        self.shaders.release()


def _frame(p, x: float, y: float, w: float, h: float, t: float, colour: tuple) -> None:
    """A frame of width `t` whose outer edge is the box (x, y, w, h)."""
    for side in ((x, y, w, t), (x, y + h - t, w, t), (x, y + t, t, h - 2 * t),
                 (x + w - t, y + t, t, h - 2 * t)):  # fmt: skip
        p.rect(*side, colour)
