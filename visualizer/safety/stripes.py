"""The flash limiter's pattern guard (ITU-R BT.1702, Ofcom's guidance on regular patterns):
regular stripes, more than five light-dark pairs and contrasting, that stay on more than a
quarter of the screen for more than half a second are softened.

The limiter hands it, from time to time (every LOOK_EVERY seconds: a pattern is a slow thing),
the relative luminance of whole rows and columns, a few through each cell of its grid (10°
windows for the nearest viewer). A line through a cell is striped when it crosses its mean, by
more than STEP / 2 each way, at least three times upward at a regular pace (the gaps' spread
under REGULAR of their mean), the darker bars below DARK, and the pace fine enough for more
than PAIRS pairs across the side of a square a quarter of the screen; a cell is striped when
half of its lines one way are. Once striped cells have covered more than AREA of the screen for
ONSET seconds, each striped cell's pixels have their relative luminance moved toward the cell's
mean (shaders/flash_limit.glsl, in the limiter's last pass), far enough that its bars differ by
KEEP, under the 0.1 that makes them contrasting; the strength eases in and out over RAMP
seconds. The mean stays, so softening neither flashes nor dims. AREA, ONSET and KEEP leave a
margin under the analyser's quarter, half second and 0.1 (safety/flashes.py, which tests this).
"""

import math

import numpy as np

STEP = 0.1  # relative luminance: bars differing by less do not contrast (BT.1702: 20 cd/m²)
DARK = 0.8  # the darker bars at or above this (160 cd/m² of 200) do not count
PAIRS = 5
REGULAR = 0.25
AREA = 0.2  # of the screen (BT.1702: a quarter)
ONSET = 0.25  # seconds a pattern stays before it is softened …
RAMP = 0.15  # … in this many (BT.1702: half a second in all)
KEEP = 0.05  # what is left of the bars' difference in a softened cell
LOOK_EVERY = 0.1  # seconds between looks
LINES = 270  # lines are averaged down to this resolution first (as the analyser's frames)


class PatternGuard:
    """Which cells of a `cols` × `rows` grid are softened, and how far (`soften`)."""

    def __init__(self, cells: tuple[int, int], size: tuple[int, int]) -> None:
        self.cols, self.rows = cells
        self.step = max(1, math.ceil(size[1] / LINES))  # pixels averaged along a line
        self.span = math.sqrt(0.25 * size[0] * size[1]) / self.step  # a square a quarter of
        # the screen: its side, in averaged pixels
        self.since: float | None = None  # when the pattern came, None while there is none
        self.looked = -math.inf  # when the lines were last looked at
        self.target = np.zeros((self.rows, self.cols), np.float32)  # each cell's strength
        self.strength = np.zeros((self.rows, self.cols), np.float32)  # … now, eased to it
        self.mean = np.zeros((self.rows, self.cols), np.float32)
        self.share = 0.0  # of the screen striped, at the last look
        self.updated = -math.inf

    def due(self, now: float) -> bool:
        """Whether to hand over lines at `now`."""
        return now - self.looked >= LOOK_EVERY - 1e-6

    def softening(self, now: float) -> bool:
        """Whether a frame shown at `now` is softened anywhere."""
        engaged = self.since is not None and now - self.since >= ONSET
        return engaged or bool(self.strength.any())

    def look(self, rows: np.ndarray, columns: np.ndarray, now: float) -> None:
        """`rows`: [rows × r, width] relative luminance of whole rows, r a cell (from the
        bottom); `columns`: [cols × c, height], c a cell (from the left, bottom first)."""
        self.looked = now
        rows, columns = _average(rows, self.step), _average(columns, self.step)
        across = _cell_lines(rows, self.rows, self.cols)  # [rows, cols, r, cell's width]
        down = _cell_lines(columns, self.cols, self.rows).transpose(1, 0, 2, 3)
        striped_across, swing_across = _striped(across, self.span)
        striped_down, swing_down = _striped(down, self.span)
        share_across, share_down = striped_across.mean(axis=2), striped_down.mean(axis=2)
        striped = np.maximum(share_across, share_down) >= 0.5
        swing = np.where(share_across >= share_down,
                         _mean_where(swing_across, striped_across),
                         _mean_where(swing_down, striped_down))  # fmt: skip
        self.mean = ((across.mean(axis=(2, 3)) + down.mean(axis=(2, 3))) / 2).astype(np.float32)
        self.share = float(striped.mean())
        if self.share > AREA:
            self.since = now if self.since is None else self.since
        else:
            self.since = None
        engaged = self.since is not None and now - self.since >= ONSET
        keep = np.where(striped & engaged, 1 - KEEP / np.maximum(swing, KEEP), 0.0)
        self.target = keep.astype(np.float32)

    def advance(self, now: float) -> np.ndarray:
        """Ease each cell's strength toward its target; returns [rows, cols, 2]: the cell's
        mean relative luminance and how far toward it a pixel's moves (for a texture)."""
        step = 0.0 if self.updated == -math.inf else max(0.0, now - self.updated) / RAMP
        self.updated = now
        self.strength = np.clip(self.target, self.strength - step, self.strength + step)
        return np.stack([self.mean, self.strength], axis=-1)


def _average(lines: np.ndarray, step: int) -> np.ndarray:
    """[k, n] → [k, n // step]: each line averaged over `step` pixels at a time."""
    n = lines.shape[1] // step
    return lines[:, : n * step].reshape(len(lines), n, step).mean(axis=2, dtype=np.float32)


def _cell_lines(lines: np.ndarray, groups: int, parts: int) -> np.ndarray:
    """[groups × k, n] lines → [groups, parts, k, n // parts]: each line cut at the cells."""
    k, n = lines.shape[0] // groups, lines.shape[1] // parts
    cut = lines[:, : parts * n].reshape(groups, k, parts, n)
    return cut.transpose(0, 2, 1, 3)


def _striped(lines: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
    """[..., n] relative luminance → bool [...]: regular contrasting stripes along each line;
    and [...]: the bars' difference (the mean above the line's mean less the mean below)."""
    n = lines.shape[-1]
    mean = lines.mean(axis=-1, keepdims=True)
    above = lines > mean
    light = np.where(above, lines, 0).sum(-1) / np.maximum(above.sum(-1), 1)
    dark = np.where(above, 0, lines).sum(-1) / np.maximum((~above).sum(-1), 1)
    side = (lines > mean + STEP / 2).astype(np.int8) - (lines < mean - STEP / 2)
    place = np.arange(n, dtype=np.int32)
    last = np.maximum.accumulate(np.where(side != 0, place, 0), axis=-1)  # the last sided
    side = np.take_along_axis(side, last, axis=-1)  # each pixel: the side it was last on
    rise = (side[..., 1:] > 0) & (side[..., :-1] < 0)  # [..., n - 1]: crossings upward
    at = np.where(rise, place[1:], -1)
    before = np.maximum.accumulate(at, axis=-1)[..., :-1]  # the rise before each
    gap = np.where(rise[..., 1:] & (before >= 0), place[2:] - before, 0).astype(np.float32)
    gaps = np.maximum((gap > 0).sum(-1), 1)
    pace = gap.sum(-1) / gaps
    spread = np.sqrt(np.maximum((gap**2).sum(-1) / gaps - pace**2, 0.0))
    regular = (rise.sum(-1) >= 3) & (spread <= REGULAR * pace) & (pace < span / PAIRS)
    return regular & (dark < DARK) & (light - dark >= STEP), light - dark


def _mean_where(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """[..., k] → [...]: the mean of `values` where `where`, 0 where none."""
    return np.where(where, values, 0).sum(-1) / np.maximum(where.sum(-1), 1)
