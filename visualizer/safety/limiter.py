"""Keeps what neuroweb shows within WCAG 2.3.1 (no more than three flashes in any second) and
ITU-R BT.1702's rule on regular patterns (safety/stripes.py).

Frames are drawn into `frame()`. `finish` measures the new frame's relative luminance per cell
of a grid (its sub-cells' means, read back), decides how much of the change may be
shown, and shows it on the target (shaders/flash_limit.glsl: the last shown frame moved toward
the new one, in linear light, and striped cells softened). A cell is the area that subtends 10°
of visual angle for the venue's nearest viewer (`cells`), the window the guideline measures.
A frame that may be held back or softened is drawn into an offscreen texture of the limiter's
own, and copied or mixed onto the target; while no cell has spent its budget and nothing is
softened, the frame cannot be held back, and it is drawn straight into the target, with no copy
(a copy of a 720p frame onto a window costs 0.8 ms idle: copy.glsl; as a framebuffer blit it
cost 2.3 ms, and 4-5 ms beside the model). Only when such a frame spends a cell's budget, so
that the next may be held back and mixed from it, is it kept in a texture too (a blit: a
window's back buffer is gone after the swap). At 1080p beside the model, drawing direct only
below one transition short of the budget sent 39 % of frames through the copy (6.5 ms each
against 2.3 for a direct frame's measure).

A cell is measured as SUB × SUB sub-cells (about the analyser's pixels, safety/flashes.py), each
the mean of a grid of TAPS × TAPS pixels spread over it, read back: a mean of one row of it took
a line of text for the whole sub-cell, so a word changing in the lens's column counted as a
flash there (a third of the frames at 1080p went through the limiter's copy for it). Each
sub-cell remembers, for its relative luminance and for its red value (WCAG's saturated red measure),
what is shown, its last extreme and the direction of its last transition (a change of STEP or
more with the darker side below DARK; RED_STEP for red). A cell makes a transition when more
than AREA of its sub-cells make one the same way, and it counts against the cell's last one, as
the guideline counts a flash over more than a quarter of a 10° window. A cell that already made
BUDGET transitions in the last second may not make another: the frame is then moved toward the
new one only as far as lets at most LET of its sub-cells come within MARGIN of a transition.
Changes are held back, not dropped: they arrive as the budget frees, so the picture stays lively
and never strobes. It is written apart from the analyser, which tests it.
"""

import math
from collections import deque

import moderngl
import numpy as np

from visualizer.config import VenueSettings
from visualizer.gl.context import window_texture
from visualizer.gl.shaders import LiveVertexArray, ShaderLibrary
from visualizer.safety.stripes import PatternGuard

DESK = VenueSettings().nearest_viewer
STEP = 0.1  # relative luminance
MARGIN = 0.08
DARK = 0.8
RED_STEP = 20.0  # red value: (R - G - B) × 320 where R / (R + G + B) ≥ 0.8
RED_MARGIN = 16.0
BUDGET = 5  # transitions per cell per second: two and a half flashes, under the limit of three
SUB = 4  # sub-cells a cell, across and down
TAPS = 4  # pixels measured per sub-cell across and down, spread evenly (every one where fewer)
AREA = 0.25  # a cell's transition: more than this share of its sub-cells making one
LET = 3  # the most sub-cells of a cell out of budget that a held-back frame lets move
LINES = 4  # whole rows and columns read per window for the pattern guard
VARIANTS = ("flash_limit+HOLD", "flash_limit+SOFTEN", "flash_limit+HOLD+SOFTEN")
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # relative luminance of linear R, G, B
_LEVELS = np.arange(256) / 255
LINEAR = np.where(_LEVELS <= 0.04045, _LEVELS / 12.92, ((_LEVELS + 0.055) / 1.055) ** 2.4)
LINEAR32, LUMINANCE32 = LINEAR.astype(np.float32), LUMINANCE.astype(np.float32)  # the guard's
CHANNELS = (LINEAR[None, :] * LUMINANCE[:, None]).astype(np.float32)  # [3, 256]: each sRGB
#                                                  level's share of relative luminance


def windows(size: tuple[int, int], nearest_viewer: float) -> tuple[int, int]:
    """The grid (columns, rows) of 10° windows for a viewer `nearest_viewer` screen heights
    away. 10° there spans 2 d tan 5° of the height (the analyser's `window_side`, written out
    again): at 1.5 screen heights (a talk's front row) 0.26 of the height, a quarter, and 0.15
    of a 16:9 screen's width, about a sixth: 7 × 4 windows; at a desk's or a gallery's 1, 0.175
    of the height, a tenth of the width: 10 × 6. The pattern guard's grid."""
    side = 2 * nearest_viewer * math.tan(math.radians(5)) * size[1]  # pixels
    return max(1, round(size[0] / side)), max(1, round(size[1] / side))


def cells(size: tuple[int, int], nearest_viewer: float) -> tuple[int, int]:
    """The flash grid: cells half a 10° window each way (the windows at half the distance),
    20 × 11 at a desk, 14 × 8 at a talk. A flash over a quarter of a window covers a whole
    cell or a quarter of each of four, and a cell is measured by its mean: the analyser's
    windows are then never fuller of a flash than the limiter's cells see."""
    return windows(size, nearest_viewer / 2)


class FlashLimiter:
    def __init__(self, shaders: ShaderLibrary, nearest_viewer: float = DESK) -> None:
        """`nearest_viewer`: the front row's distance in screen heights (`[venue]`), which
        sizes the cells."""
        self.ctx, self.nearest_viewer = shaders.ctx, nearest_viewer
        self._shaders, self._copy = shaders, shaders.get("copy")
        self._vaos: dict[str, LiveVertexArray] = {}  # the copy's and each variant's of the mix
        for name in VARIANTS:  # compiled now, not on the first frame held back or softened
            shaders.get(name)
        # the pixels measured in a frame: [sub-columns, taps] and [sub-rows from the bottom, taps]
        self._columns = self._rows = np.zeros((0, 1), int)
        self._lines = (np.zeros(0, int),) * 2  # the rows and columns the pattern guard reads
        self.cells = self.windows = (1, 1)
        self.guard = PatternGuard(self.windows, (1, 1))
        self._soften: moderngl.Texture | None = None  # per cell: mean, strength
        self._direct = False  # this frame is drawn straight into the target
        self.size = (0, 0)
        self._textures: list[moderngl.Texture] = []  # three, in turn: the new frame, the frame
        self._fbos: list[moderngl.Framebuffer] = []  # shown last, and a spare for a mix
        self._new, self._shown = 0, 1
        self.held_back = 0  # frames in which a change was held back (for the HUD and tests)
        self._reset()

    def _reset(self) -> None:
        self._tracks = (_Track(STEP, MARGIN, DARK, self.cells),
                        _Track(RED_STEP, RED_MARGIN, None, self.cells))  # fmt: skip
        self.guard = PatternGuard(self.windows, self.size)

    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], now: float
              ) -> moderngl.Framebuffer:  # fmt: skip
        """The framebuffer to draw this frame (of `size`, to be shown on `target` at `now`)
        into, bound: `target` itself when no cell has spent its BUDGET of transitions in the
        last second (this frame cannot be held back) and nothing is being softened, else a
        texture of the limiter's own."""
        if size != self.size:
            self._allocate(size)
        self._direct = (all(track.most_spent(now) < BUDGET for track in self._tracks)
                        and not self.guard.softening(now))  # fmt: skip
        fbo = target if self._direct else self._fbos[self._new]
        fbo.use()
        return fbo

    def _allocate(self, size: tuple[int, int]) -> None:
        for thing in (*self._fbos, *self._textures, *([self._soften] if self._soften else [])):
            thing.release()
        self._textures = [window_texture(self.ctx, size) for _ in range(3)]  # see copy.glsl
        for texture in self._textures:
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._fbos = [self.ctx.framebuffer(color_attachments=[t]) for t in self._textures]
        self.size, self.cells = size, cells(size, self.nearest_viewer)
        self.windows = windows(size, self.nearest_viewer)
        self._columns = _spread(size[0], self.cells[0] * SUB)
        self._rows = _spread(size[1], self.cells[1] * SUB)
        self._lines = tuple(((np.arange(n * LINES) + 0.5) * length / (n * LINES)).astype(int)
                            for n, length in zip(self.windows[::-1], size[::-1], strict=True))
        self._soften = self.ctx.texture(self.windows, 2, dtype="f4")
        self._soften.repeat_x = self._soften.repeat_y = False  # eased between cells' centres
        self._reset()

    def finish(self, target: moderngl.Framebuffer, now: float) -> float:
        """Show the frame drawn since `frame()` on `target`, held back if it would flash too
        often and softened where the pattern guard says; returns the share of the change
        shown (1 = all of it). A frame drawn straight onto the target is only measured; one
        drawn offscreen and shown whole and unsoftened is copied; the mix pass runs just for
        the frames held back or softened, and what a held-back one shows is measured again (the
        red value is not linear in the mix; softening keeps each cell's mean)."""
        self.ctx.disable(moderngl.BLEND)
        drawn = target if self._direct else self._fbos[self._new]
        measured = self._measure(drawn)  # [sub-rows, sub-columns, 2]: luminance, red value
        if self.guard.due(now):
            self.guard.look(*self._read_lines(drawn), now)
        soften = self.guard.advance(now)  # [rows, cols, 2]
        amount = min(track.allowed(measured[..., i], now) for i, track in enumerate(self._tracks))
        if self._direct:  # on the target already; 1.0 here, as frame() foresaw
            for i, track in enumerate(self._tracks):
                track.show(measured[..., i], now)
            if any(track.most_spent(now) >= BUDGET for track in self._tracks):
                # it spent a budget: the next frame may be held back, mixed from this one
                self.ctx.copy_framebuffer(self._textures[self._shown], target)
            target.use()
            return amount
        spare = 3 - self._new - self._shown
        softened = bool(soften[..., 1].any())
        if amount < 1.0 or softened:
            hold = bool(amount < 1.0)
            self.held_back += hold
            name = "flash_limit" + "+HOLD" * hold + "+SOFTEN" * softened
            program = self._shaders.get(name)
            self._fbos[spare].use()
            self._textures[self._new].use(0)
            program.set("u_frame", 0)
            if hold:
                self._textures[self._shown].use(1)
                program.set("u_previous", 1)
                program.set("u_amount", amount)
            if softened:
                self._soften.write(soften.astype("f4").tobytes())
                self._soften.use(2)
                program.set("u_soften", 2)
            self._vao(name).render(moderngl.TRIANGLES, vertices=3)
            self._shown, self._new = spare, self._new  # the new frame's texture is reused
            if amount < 1.0:
                measured = self._measure(self._fbos[self._shown])  # what the mix shows
        else:
            self._shown, self._new = self._new, self._shown
        for i, track in enumerate(self._tracks):
            track.show(measured[..., i], now)
        target.use()  # a draw, not a blit: see copy.glsl
        self._textures[self._shown].use(0)
        self._copy.set("u_image", 0)
        self._vao("copy").render(moderngl.TRIANGLES, vertices=3)
        return amount

    def _vao(self, name: str) -> LiveVertexArray:
        if name not in self._vaos:
            self._vaos[name] = self._shaders.vertex_array(name, [])
        return self._vaos[name]

    def _measure(self, fbo: moderngl.Framebuffer) -> np.ndarray:
        """The frame in `fbo`: its mean relative luminance and red value per sub-cell
        (`_sub_cells_of`)."""
        return self._sub_cells_of(self._read_rows(fbo))

    def _read_rows(self, fbo: moderngl.Framebuffer) -> np.ndarray:
        """[sub-rows × TAPS, width, 3] uint8: the whole rows measured, from the bottom,
        read a row at a time (a window's framebuffer cannot be sampled by a shader)."""
        width = self.size[0]
        lines = b"".join(fbo.read(viewport=(0, y, width, 1), components=3, alignment=1)
                         for y in self._rows.ravel())  # fmt: skip
        return np.frombuffer(lines, np.uint8).reshape(self._rows.size, width, 3)

    def _read_lines(self, fbo: moderngl.Framebuffer) -> tuple[np.ndarray, np.ndarray]:
        """Relative luminance of the pattern guard's whole rows, [rows × LINES, width] from
        the bottom, and whole columns, [columns × LINES, height] bottom first."""
        (width, height), (rows, columns) = self.size, self._lines
        across = b"".join(fbo.read(viewport=(0, y, width, 1), components=3, alignment=1)
                          for y in rows)  # fmt: skip
        down = b"".join(fbo.read(viewport=(x, 0, 1, height), components=3, alignment=1)
                        for x in columns)  # fmt: skip
        return (LINEAR32[np.frombuffer(across, np.uint8).reshape(len(rows), width, 3)]
                @ LUMINANCE32,
                LINEAR32[np.frombuffer(down, np.uint8).reshape(len(columns), height, 3)]
                @ LUMINANCE32)  # fmt: skip

    def _sub_cells_of(self, lines: np.ndarray) -> np.ndarray:
        """Mean relative luminance and red value (WCAG's saturated red: (R - G - B) × 320
        where R / (R + G + B) ≥ 0.8) per sub-cell, [sub-rows from the bottom, sub-columns, 2],
        from its rows of `lines` (`_read_rows`), TAPS columns of each. Averaged here rather
        than by a GL pass: a pass of its own is one more hand-over to llvmpipe's threads, each
        costly beside the model, to average a few thousand numbers."""
        taps = np.take(lines, self._columns.ravel(), axis=1)
        r, g, b = (taps[..., i] for i in range(3))
        luminance = CHANNELS[0][r] + CHANNELS[1][g] + CHANNELS[2][b]
        r, rest = r.astype(np.int16), g.astype(np.int16) + b  # R ≥ 0.8 (R + G + B): R ≥ 4 (G + B)
        red = np.where(r >= 4 * rest, (r - rest) * np.float32(320 / 255), np.float32(0))
        (down, tall), (across, wide) = self._rows.shape, self._columns.shape
        sums = [values.reshape(down, tall, -1).sum(axis=1).reshape(down, across, wide).sum(axis=2)
                for values in (luminance, red)]  # down the rows first: contiguous, 3x faster
        return np.stack(sums, axis=-1) / (tall * wide)

    def release(self) -> None:
        for thing in (*self._fbos, *self._textures, *([self._soften] if self._soften else [])):
            thing.release()
        for vao in self._vaos.values():
            vao.release()


def _spread(length: int, parts: int) -> np.ndarray:
    """[parts, taps]: TAPS pixels of each of `parts` equal parts of `length` pixels, evenly
    spread (fewer where a part is narrower; where it has none of its own, the next one's
    first). Pixel x lies in part x × parts // length, as the analyser's and the tests' cells."""
    taps = min(TAPS, max(1, length // parts))
    bounds = -(-np.arange(parts + 1) * length // parts)  # each part's first pixel
    spread = bounds[:-1, None] + (np.arange(taps) + 0.5) / taps * np.diff(bounds)[:, None]
    return np.minimum(spread.astype(int), length - 1)


class _Track:
    """One measure (luminance or red value): per sub-cell what is shown, its last extreme and
    the direction of its last transition; per cell the direction of its last transition and
    its transitions of the last second."""

    def __init__(self, step: float, margin: float, dark: float | None,
                 cells: tuple[int, int]) -> None:  # fmt: skip
        self.step, self.margin, self.dark, self.cells = step, margin, dark, cells
        self.shown: np.ndarray | None = None  # [sub-rows, sub-columns]
        self.extreme = self.direction = None
        self.last = np.zeros(cells[::-1], np.int8)  # [rows, columns]
        self.recent: deque[tuple[float, np.ndarray]] = deque()
        self._total: np.ndarray | int = 0  # each cell's transitions in `recent`

    def allowed(self, new: np.ndarray, now: float) -> float:
        """The share of the change from what is shown to `new` that keeps every cell within
        its budget of transitions: a cell out of budget lets at most LET of its sub-cells come
        within `margin` of a transition the way that would turn the cell."""
        if self.shown is None:  # the first frame: nothing to flash against
            self.shown, self.extreme = new.copy(), new.copy()
            self.direction = np.zeros(new.shape, np.int8)
            return 1.0
        out = self._spent(now) >= BUDGET
        if not np.any(out):
            return 1.0
        moves, way = self._moves(new)
        span = new - self.shown
        limit = self.extreme + way * self.margin
        with np.errstate(divide="ignore", invalid="ignore"):  # a span of 0: held where it is
            share = np.nan_to_num((limit - self.shown) / span, nan=0.0, posinf=1.0, neginf=0.0)
        at = np.where(moves, np.clip(share, 0.0, 1.0), np.inf)
        amount = 1.0
        for sign in (1, -1):  # the cells that a move this way would turn
            first = np.sort(self._per_cell(np.where(way == sign, at, np.inf)), axis=-1)[..., LET]
            held = out & (self.last != sign)
            if np.any(held):
                amount = min(amount, float(first[held].min()))
        return amount

    def most_spent(self, now: float) -> int:
        """The most transitions any cell made in the second before `now`."""
        return int(np.max(self._spent(now)))

    def _spent(self, now: float) -> np.ndarray | int:
        """Each cell's transitions in the second before `now` (0 when there were none)."""
        while self.recent and self.recent[0][0] <= now - 1.0:
            self._total = self._total - self.recent.popleft()[1]
        return self._total

    def show(self, shown: np.ndarray, now: float) -> None:
        """`shown` is on screen now: remember it, and the transitions it made."""
        moved, way = self._moves(shown)
        change = shown - self.extreme
        follow = (np.sign(change) == self.direction) & (self.direction != 0)  # further on
        self.direction = np.where(moved, way, self.direction).astype(np.int8)
        self.extreme = np.where(moved | follow, shown, self.extreme)
        self.shown = shown
        area = SUB * SUB
        up = self._per_cell(moved & (way > 0)).sum(-1) / area
        down = self._per_cell(moved & (way < 0)).sum(-1) / area
        turn = np.where(np.maximum(up, down) > AREA, np.where(up >= down, 1, -1), 0)
        turned = (turn != 0) & (turn != self.last)  # against the cell's last transition
        self.last = np.where(turned, turn, self.last).astype(np.int8)
        self.recent.append((now, turned.astype(int)))
        self._total = self._total + self.recent[-1][1]

    def _moves(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sub-cells that showing `value` makes a transition (`step` or more from the last
        extreme, against the last transition or either way after none, the darker side below
        `dark`), and the way each would go (+1 up, -1 down)."""
        change = value - self.extreme
        way = np.where(self.direction == 0, np.sign(change), -self.direction).astype(np.int8)
        moves = (change * way >= self.step) & (way != 0)
        if self.dark is not None:
            moves &= np.minimum(value, self.extreme) < self.dark
        return moves, way

    def _per_cell(self, values: np.ndarray) -> np.ndarray:
        """[sub-rows, sub-columns] → [rows, columns, SUB × SUB]: each cell's sub-cells."""
        cols, rows = self.cells
        return values.reshape(rows, SUB, cols, SUB).swapaxes(1, 2).reshape(rows, cols, -1)
