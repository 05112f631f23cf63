"""Keeps what neuroweb shows within WCAG 2.3.1: no more than three flashes in any second.

Frames are drawn into `frame()`. `finish` measures the new frame's relative luminance per cell
of a coarse grid (from TAPS × TAPS pixels a cell, read back), decides how much of the change may
be shown, and shows it on the target (shaders/flash_limit.glsl: the last shown frame moved
toward the new one, in linear light). A frame that may be held back is drawn into an offscreen
texture of the limiter's own, and copied or mixed onto the target; while no cell is within one
transition of its budget, neither the frame nor the next can be held back, and it is drawn
straight into the target, with no copy (a copy of a 720p frame onto a window costs 0.8 ms idle:
copy.glsl; as a framebuffer blit it cost 2.3 ms, and 4-5 ms beside the model).

Each cell remembers, for its relative luminance and for its red value (WCAG's saturated red
measure), what is shown, its last extreme and the direction of its last transition (a change of
STEP or more with the darker side below DARK; RED_STEP for red), and when its transitions
were. A cell that already made BUDGET transitions in the last second may not make another
one: the frame is then moved toward the new one only as far as keeps every such cell within
MARGIN of its extreme. Changes are held back, not dropped: they arrive as the budget frees,
so the picture stays lively and never strobes. It is written apart from the analyser
(safety/flashes.py), which tests it.
"""

from collections import deque

import moderngl
import numpy as np

from visualizer.gl.context import window_texture
from visualizer.gl.shaders import ShaderLibrary

CELLS = (8, 6)
STEP = 0.1  # relative luminance
MARGIN = 0.08
DARK = 0.8
RED_STEP = 20.0  # red value: (R - G - B) × 320 where R / (R + G + B) ≥ 0.8
RED_MARGIN = 16.0
BUDGET = 5  # transitions per cell per second: two and a half flashes, under the limit of three
TAPS = 8  # pixels measured per cell, across and down
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # relative luminance of linear R, G, B
_LEVELS = np.arange(256) / 255
LINEAR = np.where(_LEVELS <= 0.04045, _LEVELS / 12.92, ((_LEVELS + 0.055) / 1.055) ** 2.4)


class FlashLimiter:
    def __init__(self, shaders: ShaderLibrary) -> None:
        self.ctx = shaders.ctx
        self._limit = shaders.get("flash_limit")
        self._copy = shaders.get("copy")
        self._vaos = {name: shaders.vertex_array(name, []) for name in ("flash_limit", "copy")}
        self._columns = self._rows = np.zeros(0, int)  # the taps' pixels in a frame
        self._direct = False  # this frame is drawn straight into the target
        self.size = (0, 0)
        self._textures: list[moderngl.Texture] = []  # three, in turn: the new frame, the frame
        self._fbos: list[moderngl.Framebuffer] = []  # shown last, and a spare for a mix
        self._new, self._shown = 0, 1
        self.held_back = 0  # frames in which a change was held back (for the HUD and tests)
        self._reset()

    def _reset(self) -> None:
        self._tracks = (_Track(STEP, MARGIN, DARK), _Track(RED_STEP, RED_MARGIN, None))

    def frame(self, target: moderngl.Framebuffer, size: tuple[int, int], now: float
              ) -> moderngl.Framebuffer:  # fmt: skip
        """The framebuffer to draw this frame (of `size`, to be shown on `target` at `now`)
        into, bound: `target` itself when no cell has spent more than BUDGET - 2 transitions
        in the last second (this frame cannot be held back, nor can the next, which would mix
        from it), else a texture of the limiter's own."""
        if size != self.size:
            self._allocate(size)
        self._direct = all(track.most_spent(now) <= BUDGET - 2 for track in self._tracks)
        fbo = target if self._direct else self._fbos[self._new]
        fbo.use()
        return fbo

    def _allocate(self, size: tuple[int, int]) -> None:
        for thing in (*self._fbos, *self._textures):
            thing.release()
        self._textures = [window_texture(self.ctx, size) for _ in range(3)]  # see copy.glsl
        for texture in self._textures:
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._fbos = [self.ctx.framebuffer(color_attachments=[t]) for t in self._textures]
        self.size = size
        across, down = CELLS[0] * TAPS, CELLS[1] * TAPS  # each tap at its pixel's centre
        self._columns = ((np.arange(across) + 0.5) * size[0] / across).astype(int)
        self._rows = ((np.arange(down) + 0.5) * size[1] / down).astype(int)  # from the bottom
        self._reset()

    def finish(self, target: moderngl.Framebuffer, now: float) -> float:
        """Show the frame drawn since `frame()` on `target`, held back if it would flash too
        often; returns the share of the change shown (1 = all of it). A frame drawn straight
        onto the target is only measured; one drawn offscreen and shown whole is copied; the mix
        pass runs just for the frames held back, and what it shows is measured again (the red
        value is not linear in the mix)."""
        self.ctx.disable(moderngl.BLEND)
        drawn = target if self._direct else self._fbos[self._new]
        measured = self._measure_cells(drawn)  # [cells, 2]: luminance, red value
        amount = min(track.allowed(measured[:, i], now) for i, track in enumerate(self._tracks))
        if self._direct:  # on the target already; 1.0 here, as frame() foresaw
            for i, track in enumerate(self._tracks):
                track.show(measured[:, i], now)
            target.use()
            return amount
        spare = 3 - self._new - self._shown
        if amount < 1.0:
            self.held_back += 1
            self._fbos[spare].use()
            self._textures[self._new].use(0)
            self._textures[self._shown].use(1)
            self._limit.set("u_frame", 0)
            self._limit.set("u_previous", 1)
            self._limit.set("u_amount", amount)
            self._vaos["flash_limit"].render(moderngl.TRIANGLES, vertices=3)
            self._shown, self._new = spare, self._new  # the new frame's texture is reused
            measured = self._measure_cells(self._fbos[self._shown])  # what the mix shows
        else:
            self._shown, self._new = self._new, self._shown
        for i, track in enumerate(self._tracks):
            track.show(measured[:, i], now)
        target.use()  # a draw, not a blit: see copy.glsl
        self._textures[self._shown].use(0)
        self._copy.set("u_image", 0)
        self._vaos["copy"].render(moderngl.TRIANGLES, vertices=3)
        return amount

    def _measure_cells(self, fbo: moderngl.Framebuffer) -> np.ndarray:
        """The frame in `fbo`: its mean relative luminance and red value (WCAG's saturated red:
        (R - G - B) × 320 where R / (R + G + B) ≥ 0.8) per cell, [cells, 2], cells in rows from
        the bottom, from TAPS × TAPS pixels per cell read a row at a time (a window's
        framebuffer cannot be sampled by a shader). Averaged here rather than by a GL pass: a
        pass of its own is one more hand-over to llvmpipe's threads, each costly beside the
        model, to average 3,072 numbers."""
        width = self.size[0]
        lines = b"".join(fbo.read(viewport=(0, y, width, 1), components=3, alignment=1)
                         for y in self._rows)  # fmt: skip
        taps = np.frombuffer(lines, np.uint8).reshape(len(self._rows), width, 3)[:, self._columns]
        luminance = LINEAR[taps] @ LUMINANCE  # [down, across]
        c = taps / 255
        saturated = c[..., 0] / np.maximum(c.sum(axis=-1), 1e-6) >= 0.8
        red = np.where(saturated, np.maximum(0.0, (c[..., 0] - c[..., 1] - c[..., 2]) * 320), 0)
        cols, rows = CELLS
        cells = np.stack([luminance, red], axis=-1).reshape(rows, TAPS, cols, TAPS, 2)
        return cells.mean(axis=(1, 3)).reshape(-1, 2)

    def release(self) -> None:
        for thing in (*self._fbos, *self._textures):
            thing.release()
        for vao in self._vaos.values():
            vao.release()


class _Track:
    """One measure (luminance or red value) per cell: what is shown, its last extreme, the
    direction of its last transition, and the transitions of the last second."""

    def __init__(self, step: float, margin: float, dark: float | None) -> None:
        self.step, self.margin, self.dark = step, margin, dark
        self.shown: np.ndarray | None = None
        self.extreme = self.direction = None
        self.recent: deque[tuple[float, np.ndarray]] = deque()
        self._total: np.ndarray | int = 0  # each cell's transitions in `recent`

    def allowed(self, new: np.ndarray, now: float) -> float:
        """The share of the change from what is shown to `new` that keeps every cell within
        its budget of transitions."""
        if self.shown is None:  # the first frame: nothing to flash against
            self.shown, self.extreme = new.copy(), new.copy()
            self.direction = np.zeros(len(new), np.int8)
            return 1.0
        spent = self._spent(now)
        amount = 1.0
        for cell in np.flatnonzero((spent >= BUDGET) & self._turns(new)):
            # the most the cell may move: to `margin` short of a transition from its extreme
            limit = self.extreme[cell] + np.sign(new[cell] - self.extreme[cell]) * self.margin
            span = new[cell] - self.shown[cell]
            if abs(span) > 1e-9:
                amount = min(amount, max(0.0, (limit - self.shown[cell]) / span))
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
        """`shown` is on screen now: remember it, and any transition it made."""
        change = shown - self.extreme
        moved = self._turns(shown)
        follow = (np.sign(change) == self.direction) & (self.direction != 0)  # further on
        self.direction = np.where(moved, np.sign(change), self.direction).astype(np.int8)
        self.extreme = np.where(moved | follow, shown, self.extreme)
        self.shown = shown
        self.recent.append((now, moved.astype(int)))
        self._total = self._total + self.recent[-1][1]

    def _turns(self, value: np.ndarray) -> np.ndarray:
        """Cells that showing `value` makes a transition: `step` or more from the last extreme,
        against the last transition (either way after none), the darker side below `dark`."""
        change = value - self.extreme
        against = np.where(self.direction == 0, True, np.sign(change) != self.direction)
        turns = (np.abs(change) >= self.step) & against
        if self.dark is not None:
            turns &= np.minimum(value, self.extreme) < self.dark
        return turns
