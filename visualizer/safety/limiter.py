"""Keeps what neuroweb shows within WCAG 2.3.1: no more than three flashes in any second.

Frames are drawn into `frame()`, an offscreen texture, instead of the target. `finish` measures
the new frame's relative luminance per cell of a coarse grid (shaders/flash_measure.glsl),
decides how much of the change may be shown, and draws the shown frame onto the target
(shaders/flash_limit.glsl: the last shown frame moved toward the new one, in linear light).

Each cell remembers the luminance shown, its last extreme and the direction of its last
transition (a change of STEP or more, the darker side below DARK), and when its transitions
were. A cell that already made BUDGET transitions in the last second may not make another
one: the frame is then moved toward the new one only as far as keeps every such cell within
MARGIN of its extreme. Changes are held back, not dropped: they arrive as the budget frees,
so the picture stays lively and never strobes. It is written apart from the analyser
(safety/flashes.py), which tests it.
"""

from collections import deque

import moderngl
import numpy as np

from visualizer.render.shaders import ShaderLibrary

CELLS = (8, 6)
STEP = 0.1
MARGIN = 0.08
DARK = 0.8
BUDGET = 5  # transitions per cell per second: two and a half flashes, under the limit of three


class FlashLimiter:
    def __init__(self, shaders: ShaderLibrary) -> None:
        self.ctx = shaders.ctx
        self._measure = shaders.get("flash_measure")
        self._limit = shaders.get("flash_limit")
        self._vaos = {name: shaders.vertex_array(name, []) for name in
                      ("flash_measure", "flash_limit")}  # fmt: skip
        self._cells_texture = self.ctx.texture(CELLS, 1, dtype="f4")
        self._cells_fbo = self.ctx.framebuffer(color_attachments=[self._cells_texture])
        self.size = (0, 0)
        self._textures: list[moderngl.Texture] = []  # three, in turn: the new frame, the frame
        self._fbos: list[moderngl.Framebuffer] = []  # shown last, and a spare for a mix
        self._new, self._shown = 0, 1
        self.held_back = 0  # frames in which a change was held back (for the HUD and tests)
        self._reset()

    def _reset(self) -> None:
        cells = CELLS[0] * CELLS[1]
        self._luma: np.ndarray | None = None  # [cells] luminance shown last
        self._extreme = np.zeros(cells)
        self._direction = np.zeros(cells, np.int8)
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # (time, transitions) last 1 s

    def frame(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        """The framebuffer to draw this frame into, bound."""
        if size != self.size:
            self._allocate(size)
        self._fbos[self._new].use()
        return self._fbos[self._new]

    def _allocate(self, size: tuple[int, int]) -> None:
        for thing in (*self._fbos, *self._textures):
            thing.release()
        self._textures = [self.ctx.texture(size, 4) for _ in range(3)]
        for texture in self._textures:
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._fbos = [self.ctx.framebuffer(color_attachments=[t]) for t in self._textures]
        self.size = size
        self._reset()

    def finish(self, target: moderngl.Framebuffer, now: float) -> float:
        """Show the frame drawn since `frame()` on `target`, held back if it would flash too
        often; returns the share of the change shown (1 = all of it). A frame shown whole is
        only copied: the mix pass runs just for the frames held back."""
        self.ctx.disable(moderngl.BLEND)
        amount = self._allowed(self._luminance(), now)
        spare = 3 - self._new - self._shown
        if amount < 1.0:
            self._fbos[spare].use()
            self._textures[self._new].use(0)
            self._textures[self._shown].use(1)
            self._limit.set("u_frame", 0)
            self._limit.set("u_previous", 1)
            self._limit.set("u_amount", amount)
            self._vaos["flash_limit"].render(moderngl.TRIANGLES, vertices=3)
            self._shown, self._new = spare, self._new  # the new frame's texture is reused
        else:
            self._shown, self._new = self._new, self._shown
        self.ctx.copy_framebuffer(target, self._fbos[self._shown])
        target.use()
        return amount

    def _luminance(self) -> np.ndarray:
        """The new frame's mean relative luminance per cell."""
        self._cells_fbo.use()
        self._textures[self._new].use(0)
        self._measure.set("u_frame", 0)
        self._measure.set("u_cells", CELLS)
        self._vaos["flash_measure"].render(moderngl.TRIANGLES, vertices=3)
        return np.frombuffer(self._cells_texture.read(), np.float32).astype(np.float64)

    def _allowed(self, new: np.ndarray, now: float) -> float:
        """The share of the change from the shown frame to `new` that keeps every cell within
        its budget of transitions; then remember what is shown."""
        if self._luma is None:  # the first frame: nothing to flash against
            self._luma, self._extreme = new.copy(), new.copy()
            return 1.0
        while self._recent and self._recent[0][0] <= now - 1.0:
            self._recent.popleft()
        spent = sum((moved for _, moved in self._recent), np.zeros(len(new), int))
        amount = 1.0
        for cell in np.flatnonzero((spent >= BUDGET) & self._would_turn(new)):
            # the most the cell may move: to MARGIN short of a transition from its extreme
            toward = np.sign(new[cell] - self._extreme[cell])
            limit = self._extreme[cell] + toward * MARGIN
            span = new[cell] - self._luma[cell]
            if abs(span) > 1e-9:
                amount = min(amount, max(0.0, (limit - self._luma[cell]) / span))
        if amount < 1.0:
            self.held_back += 1
        shown = self._luma + amount * (new - self._luma)
        change = shown - self._extreme
        moved = self._would_turn(shown)
        follow = (np.sign(change) == self._direction) & (self._direction != 0)  # further on
        self._direction = np.where(moved, np.sign(change), self._direction).astype(np.int8)
        self._extreme = np.where(moved | follow, shown, self._extreme)
        self._luma = shown
        self._recent.append((now, moved.astype(int)))
        return amount

    def _would_turn(self, value: np.ndarray) -> np.ndarray:
        """Cells that showing `value` makes a transition: STEP or more from the last extreme,
        against the last transition (either way after none), with the darker side below DARK."""
        change = value - self._extreme
        against = np.where(self._direction == 0, True, np.sign(change) != self._direction)
        darker = np.minimum(value, self._extreme)
        return (np.abs(change) >= STEP) & against & (darker < DARK)

    def release(self) -> None:
        for thing in (*self._fbos, *self._textures, self._cells_fbo, self._cells_texture):
            thing.release()
        for vao in self._vaos.values():
            vao.release()
