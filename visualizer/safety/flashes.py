"""Flash and pattern analysis of rendered frames or a video, after WCAG 2.3.1 ("Three Flashes or
Below Threshold"), its definitions of general and red flashes, and ITU-R BT.1702 / Ofcom's
guidance on regular patterns.

This module only measures. The limiter (safety/limiter.py) that keeps neuroweb's output within
the limits is written separately and shares no code with it (the window's geometry is written
out in both), so a test can use this one to check that one.

- A *transition* of a pixel: its relative luminance changes by at least 0.1 (of 1.0) from its
  last extreme, with the darker state below 0.8; a red transition: its red value (R − G − B)
  × 320, counted where R / (R + G + B) ≥ 0.8, changes by more than 20 (sRGB components 0..1).
- A region has a transition in a frame when more than a quarter of its pixels make one in the
  same direction, and it counts only against the region's last one: a second fall after a
  fall (a smooth fade reaching the pixels of a region at different frames) is the same change.
  Regions are a grid of overlapping windows, each the area that subtends 10° of visual angle
  (what the guideline measures) for the nearest viewer (`[venue] nearest_viewer`, in screen
  heights: `window_side`), stepped by half their size.
- A *flash* is a pair of opposing transitions. A region fails when it has more than three
  flashes (more than six transitions) in any one-second window.
- A *regular pattern*: more than five light-dark pairs of stripes, contrasting (the lighter
  bars at least 0.1 above the darker, 20 cd/m² of BT.1702's 200; the darker below 0.8, its 160
  cd/m²), over more than a quarter of the screen. It fails when it stays longer than half a
  second. Each 10° tile is tested on its own: striped when one spatial frequency holds most
  of its contrast, with at least two pairs across the tile and more than five across the side
  of a square a quarter of the screen.
"""

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from visualizer.config import VenueSettings

LUMINANCE_STEP = 0.1
DARK_BELOW = 0.8
RED_STEP = 20.0
RED_SHARE = 0.8
AREA_SHARE = 0.25
MAX_FLASHES = 3
ANALYSIS_SIZE = (96, 54)  # frames are averaged down to this many pixels first (flashes)
PATTERN_LINES = 270  # stripes are looked for in frames averaged down to at most this many lines
PATTERN_PAIRS = 5  # a pattern has more than this many light-dark pairs of stripes …
PATTERN_CYCLES = 2.0  # … and a tile is tested for stripes from two pairs across it
PATTERN_PEAK = 0.5  # share of a tile's contrast (its energy beside the mean) in one or two
#                     frequencies (and those beside them)
PATTERN_AREA = 0.25  # of the screen
PATTERN_S = 0.5  # the longest a regular pattern may stay
DESK = VenueSettings().nearest_viewer
AROUND = np.arange(-2, 3)  # a peak's neighbourhood, cleared before the next is looked for
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)


def window_side(nearest_viewer: float) -> float:
    """The side of a 10° window, a fraction of the screen's height, for a viewer
    `nearest_viewer` screen heights away: 2 d tan 5° (0.175 d). At 1.5 screen heights (a
    talk's front row) that is 0.26 of the height, about a quarter, and 0.26 / (16 / 9) = 0.15
    of a 16:9 screen's width, about a sixth; at a desk's or a gallery's 1, 0.175 of the height
    and a tenth of the width. (WCAG's 341 × 256 pixels of a 1024 × 768 screen, a third each
    way, is the same angle at 2.4 screen heights.)"""
    return min(1.0, 2 * nearest_viewer * math.tan(math.radians(5)))


@dataclass(frozen=True)
class FlashReport:
    frames: int
    fps: float
    general_per_s: int  # the most flashes any region had in any one-second window
    red_per_s: int
    pattern_s: float = 0.0  # the longest stretch with a regular pattern over a quarter

    @property
    def compliant(self) -> bool:
        return (self.general_per_s <= MAX_FLASHES and self.red_per_s <= MAX_FLASHES
                and self.pattern_s <= PATTERN_S)  # fmt: skip


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


LINEAR = _linear(np.arange(256, dtype=np.float32) / 255)  # an 8-bit level's linear value


def _blocks(rgb: np.ndarray, by: int, bx: int) -> np.ndarray:
    """[h, w, 3] uint8 → floats 0..1 averaged over by × bx blocks (cropped to whole blocks)."""
    h, w = rgb.shape[:2]
    rows, cols = h // by, w // bx
    blocks = rgb[: rows * by, : cols * bx].reshape(rows, by, cols, bx, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float32) / 255.0


class _Windows:
    """The 10° windows of a frame, as corners in its analysis pixels, and the share of each
    that a mask covers (from a summed-area table)."""

    def __init__(self, shape: tuple[int, int], side: tuple[float, float]) -> None:
        (h, w), (sy, sx) = shape, (max(1, min(shape[0], round(side[0]))),
                                   max(1, min(shape[1], round(side[1]))))  # fmt: skip
        ys, xs = _starts(h, sy, max(1, sy // 2)), _starts(w, sx, max(1, sx // 2))
        self.y0, self.x0 = np.repeat(ys, len(xs)), np.tile(xs, len(ys))
        self.y1, self.x1 = self.y0 + sy, self.x0 + sx
        self.area = sy * sx

    def __len__(self) -> int:
        return len(self.y0)

    def shares(self, mask: np.ndarray) -> np.ndarray:
        table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
        table[1:, 1:] = mask.cumsum(0).cumsum(1)
        total = (table[self.y1, self.x1] - table[self.y0, self.x1] - table[self.y1, self.x0]
                 + table[self.y0, self.x0])  # fmt: skip
        return total / self.area


def _starts(n: int, size: int, step: int) -> np.ndarray:
    """Window starts across n pixels, `step` apart, the last flush with the edge."""
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return np.array(starts)


class _Transitions:
    """Per-pixel transitions of one quantity, and per-window counts over the last second."""

    def __init__(self, step: float, fps: float, dark_below: float | None) -> None:
        self.step, self.dark_below = step, dark_below
        self.extreme: np.ndarray | None = None  # each pixel's value at its last extreme
        self.direction: np.ndarray | None = None  # +1 rising, -1 falling, 0 not yet
        self.last: np.ndarray | int = 0  # each window's last transition: +1, -1, 0 none yet
        self.recent: deque[np.ndarray] = deque(maxlen=max(1, round(fps)))  # [windows]
        self.worst = 0

    def add(self, value: np.ndarray, windows: _Windows) -> None:
        if self.extreme is None:
            self.extreme, self.direction = value.copy(), np.zeros(value.shape, np.int8)
            return
        change = value - self.extreme
        rising, falling, fresh = self.direction > 0, self.direction < 0, self.direction == 0
        follow = (rising & (change > 0)) | (falling & (change < 0))  # still going the same way
        moved = ((rising & (change <= -self.step)) | (falling & (change >= self.step))
                 | (fresh & (np.abs(change) >= self.step)))  # fmt: skip
        if self.dark_below is not None:
            moved &= np.minimum(value, self.extreme) < self.dark_below
        sign = np.sign(change).astype(np.int8)
        self.extreme = np.where(follow | moved, value, self.extreme)
        self.direction = np.where(moved, sign, self.direction)
        up, down = windows.shares(moved & (sign > 0)), windows.shares(moved & (sign < 0))
        way = np.where(np.maximum(up, down) > AREA_SHARE, np.where(up >= down, 1, -1), 0)
        turned = (way != 0) & (way != self.last)  # against the window's last transition
        self.last = np.where(turned, way, self.last)
        self.recent.append(turned)
        self.worst = max(self.worst, int(np.sum(self.recent, axis=0).max()) // 2)


class _Patterns:
    """Regular stripes per 10° tile, and the longest run of frames with more than
    PATTERN_AREA of the screen striped."""

    def __init__(self) -> None:
        self.run = self.longest = 0

    def add(self, luminance: np.ndarray, side: int) -> float:
        """One frame's relative luminance [h, w]; returns the share of it striped."""
        h, w = luminance.shape
        side = max(8, min(side, h, w))
        ys, xs = _starts(h, side, side), _starts(w, side, side)
        tiles = np.stack([luminance[y: y + side, x: x + side] for y in ys for x in xs])
        span = math.sqrt(PATTERN_AREA * h * w)  # a square a quarter of the screen: its side
        striped = _striped(tiles, max(PATTERN_CYCLES, PATTERN_PAIRS * side / span))
        covered = np.zeros((h, w), bool)
        for k in np.flatnonzero(striped):
            y, x = ys[k // len(xs)], xs[k % len(xs)]
            covered[y: y + side, x: x + side] = True
        share = float(covered.mean())
        self.run = self.run + 1 if share > PATTERN_AREA else 0
        self.longest = max(self.longest, self.run)
        return share


def _striped(tiles: np.ndarray, least: float) -> np.ndarray:
    """[n, s, s] relative luminance → [n] bool: contrasting regular stripes, in any direction,
    more than `least` light-dark pairs across."""
    n, s, _ = tiles.shape
    mean = tiles.mean(axis=(1, 2), keepdims=True)
    above = tiles > mean
    count = np.maximum(above.sum(axis=(1, 2)), 1), np.maximum((~above).sum(axis=(1, 2)), 1)
    light = np.where(above, tiles, 0).sum(axis=(1, 2)) / count[0]
    dark = np.where(above, 0, tiles).sum(axis=(1, 2)) / count[1]
    contrasting = (light - dark >= LUMINANCE_STEP) & (dark < DARK_BELOW)
    m = 1 << (s - 1).bit_length()  # padded to a power of two: a fast transform
    hann = np.hanning(s)
    power = np.abs(np.fft.fft2((tiles - mean) * np.outer(hann, hann), s=(m, m))) ** 2
    power[:, 0, 0] = 0.0
    near = sum(np.roll(power, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    rows, freq = np.arange(n), np.fft.fftfreq(m) * s  # cycles across the tile
    energy, first = np.zeros(n), None
    for _ in range(2):  # stripes are one frequency; a grid (polka dots: rows of elements), two
        peak = near.reshape(n, -1).argmax(axis=1)
        energy += near.reshape(n, -1)[rows, peak]
        first = peak if first is None else first
        for y, x in ((peak // m, peak % m), (-(peak // m) % m, -(peak % m) % m)):  # and mirror
            near[rows[:, None, None], (y[:, None, None] + AROUND[:, None]) % m,
                 (x[:, None, None] + AROUND) % m] = 0.0  # fmt: skip
    share = np.minimum(1.0, 2 * energy / np.maximum(power.sum(axis=(1, 2)), 1e-12))
    cycles = np.hypot(freq[first // m], freq[first % m])
    return contrasting & (share >= PATTERN_PEAK) & (cycles > least)


class FlashAnalyser:
    """Feed frames in order (`add`); `report()` says how many flashes per second were seen,
    and how long a regular pattern stayed, for a viewer `nearest_viewer` screen heights away
    (a desk's by default)."""

    def __init__(self, fps: float, nearest_viewer: float = DESK) -> None:
        self.fps, self.side = fps, window_side(nearest_viewer)
        self.frames = 0
        self._general = _Transitions(LUMINANCE_STEP, fps, DARK_BELOW)
        self._red = _Transitions(RED_STEP, fps, None)
        self._patterns = _Patterns()
        self._windows: _Windows | None = None
        self.pattern_share = 0.0  # the last frame's share striped

    def add(self, rgb: np.ndarray) -> None:
        """One frame: [h, w, 3] uint8, top row first."""
        h, w = rgb.shape[:2]
        by, bx = max(1, h // ANALYSIS_SIZE[1]), max(1, w // ANALYSIS_SIZE[0])
        small = _blocks(rgb, by, bx)
        if self._windows is None:  # the window's side in pixels of the frame, then of `small`
            self._windows = _Windows(small.shape[:2], (self.side * h / by, self.side * h / bx))
        lin = _linear(small)
        luminance = lin @ LUMINANCE
        total = small.sum(axis=2) + 1e-9
        red_share = small[:, :, 0] / total
        red = np.maximum(0.0, (small[:, :, 0] - small[:, :, 1] - small[:, :, 2]) * 320)
        self._general.add(luminance, self._windows)
        self._red.add(np.where(red_share >= RED_SHARE, red, 0.0), self._windows)
        step = max(1, math.ceil(h / PATTERN_LINES))
        fine = (LINEAR[rgb] if step == 1 else _linear(_blocks(rgb, step, step))) @ LUMINANCE
        self.pattern_share = self._patterns.add(fine, round(self.side * h / step))
        self.frames += 1

    def report(self) -> FlashReport:
        return FlashReport(self.frames, self.fps, self._general.worst, self._red.worst,
                           self._patterns.longest / self.fps)  # fmt: skip


def analyse_video(path: Path, nearest_viewer: float = DESK) -> FlashReport:
    """Decode `path` with ffmpeg and analyse every frame, for a viewer `nearest_viewer`
    screen heights away."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    analyser = FlashAnalyser(meta["fps"], nearest_viewer)
    for data in reader:
        analyser.add(np.frombuffer(data, np.uint8).reshape(h, w, 3))
    return analyser.report()
