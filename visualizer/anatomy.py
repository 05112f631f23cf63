"""Frames → the numbers the architecture scene shows (from visualizer/measures.py), eased
between tokens for the bars; the labels print the frame's own numbers (`latest`).

- Head maps: for every block and query head, the attention of the newest ROWS tokens over the
  newest COLUMNS positions (a lower-triangular heatmap per head, newest at the bottom right),
  the weights as they are (the shader shows √weight), nothing rescaled.
- Per block: ‖h‖ after the block on a log scale from the smallest to the largest ‖h‖ of this
  token (`residual`), its update ‖Δh‖ ÷ ‖h_in‖ (`update`), and its MLP's write as a share of
  the stream after it (`mlp`); each bar is 0..1.
- The focus (the block drawn up close): the block whose update is largest against its own
  recent average (`surprise`: this token's ‖Δh‖ ÷ ‖h_in‖ over its running mean), so the view
  follows what changes; block 0's update, always the largest in absolute terms, would never
  let it move.
"""

from collections import deque

import numpy as np

from visualizer import measures
from visualizer.frame import Frame

ROWS = 24  # recent tokens per head map
COLUMNS = 24  # recent positions per head map
EASE_S = 0.12
MEAN_RATE = 0.1  # weight of the newest token in a block's running mean update


class Anatomy:
    def __init__(self) -> None:
        self.maps = np.zeros((0, 0, ROWS, COLUMNS), np.float32)  # [L, H, rows, columns] 0..1
        self.residual = np.zeros(0, np.float32)  # [L] displayed bars 0..1, eased
        self.update = np.zeros(0, np.float32)
        self.mlp = np.zeros(0, np.float32)
        self.experts = np.zeros((0, 0), np.float32)  # [L, E] routing weights, eased
        self._targets = (self.residual, self.update, self.mlp, self.experts)
        self._recent: deque[Frame] = deque(maxlen=ROWS)
        self.newest = -1  # the newest frame's run position
        # the newest frame's numbers, as the labels print them (not eased)
        self.norms = np.zeros(0)  # [L+1] ‖h‖
        self.updates = np.zeros(0)  # [L] ‖Δh‖ ÷ ‖h_in‖
        self.shares = np.zeros(0)  # [L] ‖MLP write‖ ÷ ‖h_out‖
        self.surprise = np.zeros(0)  # [L] this update ÷ the block's running mean update
        self._mean_update = np.zeros(0)

    def ingest(self, frame: Frame) -> None:
        if frame.index <= self.newest:  # a new answer begins
            self._recent.clear()
        self._recent.append(frame)
        self.newest = frame.index
        self.norms = measures.residual_norm(frame)
        self.updates = measures.update_ratio(frame)
        self.shares = measures.mlp_share(frame)
        if self._mean_update.shape != self.updates.shape:
            self._mean_update = self.updates.copy()
        self.surprise = self.updates / (self._mean_update + measures.EPS)
        self._mean_update += MEAN_RATE * (self.updates - self._mean_update)
        low, high = self.norms.min(), self.norms.max()
        residual = measures.log_fraction(self.norms[1:], low, max(high, low * 1.0001))
        self._targets = (residual, np.minimum(self.updates, 1).astype(np.float32),
                         np.minimum(self.shares, 1).astype(np.float32),
                         frame.experts.astype(np.float32))  # fmt: skip
        if self.residual.shape != residual.shape or self.experts.shape != frame.experts.shape:
            self.residual, self.update, self.mlp, self.experts = (t.copy() for t in self._targets)
        self.maps = self._head_maps()

    def advance(self, dt: float) -> None:
        k = 1.0 - np.exp(-dt / EASE_S)
        shown = (self.residual, self.update, self.mlp, self.experts)
        for value, target in zip(shown, self._targets, strict=True):
            value += k * (target - value)

    @property
    def focus(self) -> int:
        """The block whose update for the newest token is largest against its recent mean."""
        return int(np.argmax(self.surprise)) if len(self.surprise) else 0

    def _head_maps(self) -> np.ndarray:
        newest = self._recent[-1]
        layers, heads = newest.attn.shape[:2]
        maps = np.zeros((layers, heads, ROWS, COLUMNS), np.float32)
        first_column = newest.index - COLUMNS + 1  # run position of column 0
        for row, frame in enumerate(self._recent, start=ROWS - len(self._recent)):
            shown = min(frame.attn.shape[-1], frame.index - first_column + 1)  # in view, and here
            if shown <= 0:
                continue
            end = frame.index - first_column + 1
            maps[:, :, row, end - shown : end] = frame.attn[:, :, -shown:]
        return maps
