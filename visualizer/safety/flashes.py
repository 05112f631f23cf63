"""Flash analysis of rendered frames or a video, after WCAG 2.3.1 ("Three Flashes or Below
Threshold") and its definitions of general and red flashes.

This module only measures. The limiter (safety/limiter.py) that keeps neuroweb's output within
the limit is written separately and shares no code with it, so a test can use this one to
check that one.

- A *transition* of a pixel: its relative luminance changes by at least 0.1 (of 1.0) from its
  last extreme, with the darker state below 0.8; a red transition: its red value (R − G − B)
  × 320, counted where R / (R + G + B) ≥ 0.8, changes by more than 20 (sRGB components 0..1).
- A region has a transition in a frame when at least a quarter of its pixels make one in the
  same direction. Regions are a fixed grid of overlapping windows, each a ninth of the screen
  (about the 10° of visual field the guideline measures at a normal viewing distance), stepped
  by half their size.
- A *flash* is a pair of opposing transitions. A region fails when it has more than three
  flashes (more than six transitions) in any one-second window.
"""

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

LUMINANCE_STEP = 0.1
DARK_BELOW = 0.8
RED_STEP = 20.0
RED_SHARE = 0.8
AREA_SHARE = 0.25
MAX_FLASHES = 3
ANALYSIS_SIZE = (96, 54)  # frames are averaged down to this many pixels first
WINDOWS = 5  # per side: windows a third of the screen wide, stepped by a sixth


@dataclass(frozen=True)
class FlashReport:
    frames: int
    fps: float
    general_per_s: int  # the most flashes any region had in any one-second window
    red_per_s: int

    @property
    def compliant(self) -> bool:
        return self.general_per_s <= MAX_FLASHES and self.red_per_s <= MAX_FLASHES


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _shrink(rgb: np.ndarray) -> np.ndarray:
    """[h, w, 3] uint8 → [54, 96, 3] floats 0..1, by averaging blocks (any size in, cropped to a
    whole number of blocks)."""
    h, w = rgb.shape[:2]
    by, bx = max(1, h // ANALYSIS_SIZE[1]), max(1, w // ANALYSIS_SIZE[0])
    rows, cols = h // by, w // bx
    blocks = rgb[: rows * by, : cols * bx].reshape(rows, by, cols, bx, 3)
    return blocks.mean(axis=(1, 3)) / 255.0


class _Transitions:
    """Per-pixel transitions of one quantity, and per-window counts over the last second."""

    def __init__(self, step: float, fps: float, dark_below: float | None) -> None:
        self.step, self.dark_below = step, dark_below
        self.extreme: np.ndarray | None = None  # each pixel's value at its last extreme
        self.direction: np.ndarray | None = None  # +1 rising, -1 falling, 0 not yet
        self.window = max(1, round(fps))
        self.recent: deque[np.ndarray] = deque(maxlen=self.window)  # [windows] transitions
        self.worst = 0

    def add(self, value: np.ndarray, windows: list) -> None:
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
        counts = []
        for rows, cols in windows:
            up = (moved & (sign > 0))[rows, cols].mean()
            down = (moved & (sign < 0))[rows, cols].mean()
            counts.append(1 if max(up, down) >= AREA_SHARE else 0)
        self.recent.append(np.array(counts))
        transitions = np.sum(self.recent, axis=0)
        self.worst = max(self.worst, int(transitions.max()) // 2)


class FlashAnalyser:
    """Feed frames in order (`add`); `report()` says how many flashes per second were seen."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.frames = 0
        self._general = _Transitions(LUMINANCE_STEP, fps, DARK_BELOW)
        self._red = _Transitions(RED_STEP, fps, None)
        self._windows: list | None = None

    def add(self, rgb: np.ndarray) -> None:
        """One frame: [h, w, 3] uint8, top row first."""
        small = _shrink(rgb)
        if self._windows is None:
            self._windows = _windows(small.shape[:2])
        lin = _linear(small)
        luminance = lin @ np.array([0.2126, 0.7152, 0.0722])
        total = small.sum(axis=2) + 1e-9
        red_share = small[:, :, 0] / total
        red = np.maximum(0.0, (small[:, :, 0] - small[:, :, 1] - small[:, :, 2]) * 320)
        self._general.add(luminance, self._windows)
        self._red.add(np.where(red_share >= RED_SHARE, red, 0.0), self._windows)
        self.frames += 1

    def report(self) -> FlashReport:
        return FlashReport(self.frames, self.fps, self._general.worst, self._red.worst)


def _windows(shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    h, w = shape
    result = []
    for i in range(WINDOWS):
        for j in range(WINDOWS):
            y, x = i * h // (WINDOWS + 1), j * w // (WINDOWS + 1)
            result.append((slice(y, y + h // 3), slice(x, x + w // 3)))
    return result


def analyse_video(path: Path) -> FlashReport:
    """Decode `path` with ffmpeg and analyse every frame."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    analyser = FlashAnalyser(meta["fps"])
    for data in reader:
        analyser.add(np.frombuffer(data, np.uint8).reshape(h, w, 3))
    return analyser.report()
