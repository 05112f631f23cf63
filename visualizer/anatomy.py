"""Frames → the numbers the architecture scene shows, eased between tokens.

- Head maps: for every block and query head, the attention of the newest ROWS tokens over the
  newest COLUMNS positions (a lower-triangular heatmap per head, newest at the bottom right).
  Each row is scaled by its largest weight after the first position in view, the attention
  sink, so the pattern of the rest stays readable; the sink saturates.
- Per block: the size of the residual stream after the block and how much the block wrote into
  it (its update relative to its input), and its MLP activity (RMS), each normalised per block
  against running statistics to 0..1 (0.5 typical), as the neural web does.
"""

from collections import deque

import numpy as np

from visualizer.frame import Frame
from visualizer.running_norm import RunningNorm

ROWS = 24  # recent tokens per head map
COLUMNS = 24  # recent positions per head map
EASE_S = 0.12


class Anatomy:
    def __init__(self) -> None:
        self.maps = np.zeros((0, 0, ROWS, COLUMNS), np.float32)  # [L, H, rows, columns] 0..1
        self.residual = np.zeros(0, np.float32)  # [L] displayed, eased
        self.write = np.zeros(0, np.float32)
        self.mlp = np.zeros(0, np.float32)
        self._targets = (self.residual, self.write, self.mlp)
        self._recent: deque[Frame] = deque(maxlen=ROWS)
        self._norms = (RunningNorm(), RunningNorm(), RunningNorm())
        self.newest = -1  # the newest frame's run position

    def ingest(self, frame: Frame) -> None:
        if frame.index <= self.newest:  # a new answer begins
            self._recent.clear()
        self._recent.append(frame)
        self.newest = frame.index
        h = frame.hidden.astype(np.float64)
        size = np.linalg.norm(h[1:], axis=1)
        write = np.linalg.norm(h[1:] - h[:-1], axis=1) / (np.linalg.norm(h[:-1], axis=1) + 1e-6)
        mlp = np.sqrt(np.mean(np.square(frame.mlp, dtype=np.float64), axis=1))
        values = (size, write, mlp)
        self._targets = tuple(n(v[None, :])[0] for n, v in zip(self._norms, values, strict=True))
        if self.residual.shape != self._targets[0].shape:
            self.residual, self.write, self.mlp = (t.copy() for t in self._targets)
        self.maps = self._head_maps()

    def advance(self, dt: float) -> None:
        k = 1.0 - np.exp(-dt / EASE_S)
        for shown, target in zip((self.residual, self.write, self.mlp), self._targets, strict=True):
            shown += k * (target - shown)

    @property
    def focus(self) -> int:
        """The block that wrote most into the residual stream for the newest token."""
        return int(np.argmax(self._targets[1])) if len(self._targets[1]) else 0

    def _head_maps(self) -> np.ndarray:
        newest = self._recent[-1]
        layers, heads = newest.attn.shape[:2]
        maps = np.zeros((layers, heads, ROWS, COLUMNS), np.float32)
        first_column = newest.index - COLUMNS + 1  # run position of column 0
        for row, frame in enumerate(self._recent, start=ROWS - len(self._recent)):
            shown = min(frame.attn.shape[-1], frame.index - first_column + 1)  # in view, and here
            if shown <= 0:
                continue
            rest = frame.attn[:, :, 1:] if frame.attn.shape[-1] > 1 else frame.attn
            scale = rest.max(axis=-1, keepdims=True) + 1e-9  # the largest weight after the sink
            end = frame.index - first_column + 1
            maps[:, :, row, end - shown : end] = np.minimum(frame.attn[:, :, -shown:] / scale, 1)
        return maps
