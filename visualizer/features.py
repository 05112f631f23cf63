"""Feature mapping: frames → the numbers the scene shows, eased smoothly between tokens.

Nodes: each layer's vector (the residual stream `hidden`, or the MLP activation) is split into
`look.nodes_per_layer` contiguous groups of dimensions; a node's value is the log of its group's
RMS, normalised per layer against running statistics (an exponential moving mean and variance
over recent tokens), so early and late layers are both readable although their scales differ
by orders of magnitude. Row 0 is the embedding output; row l is block l's output and, for the
hue, block l's MLP. Attention: per layer, the heads' mean attention of the newest token over
the earlier ones (the first token in view, the attention sink, left out and the rest
renormalised); the `look.arcs_per_layer` most attended become arcs.

Every displayed value eases toward its target with time constant `look.ease_s`, so motion is
continuous at any frame rate; a new token starts a `pulse` that fades over `look.pulse_s`.
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from visualizer.anatomy import Anatomy
from visualizer.config import LookSettings
from visualizer.frame import Frame
from visualizer.running_norm import RunningNorm

MAX_TOKENS_KEPT = 2048  # the answer text keeps at most this many tokens (kiosk runs for days)


def group_rms(x: np.ndarray, groups: int) -> np.ndarray:
    """[rows, width] → [rows, groups]: RMS over contiguous, nearly equal groups of columns
    (groups ≤ width)."""
    width = x.shape[-1]
    starts = (np.arange(groups) * width) // groups  # [groups]
    counts = np.diff(np.append(starts, width))
    sums = np.add.reduceat(np.square(x, dtype=np.float64), starts, axis=-1)
    return np.sqrt(sums / counts).astype(np.float32)


@dataclass(frozen=True)
class Token:
    index: int
    text: str
    is_prompt: bool


class SceneState:
    """The scene's CPU state: targets set by `ingest`, displayed values moved by `advance`."""

    def __init__(self, look: LookSettings) -> None:
        self.look = look
        self.anatomy = Anatomy()  # what the architecture scene shows
        self._hidden_norm, self._mlp_norm = RunningNorm(), RunningNorm()
        self.rows = 0  # layers shown: embedding + blocks (0 until the first frame)
        self.level = np.zeros((0, 0), np.float32)  # [rows, N] displayed brightness 0..1
        self.hue = np.zeros((0, 0), np.float32)  # [rows, N] displayed cold→warm 0..1
        self._level_target = self.level
        self._hue_target = self.hue
        self.arcs: dict[tuple[int, int], float] = {}  # (layer, run position) → displayed weight
        self._arc_targets: dict[tuple[int, int], float] = {}
        self.tokens: deque[Token] = deque(maxlen=MAX_TOKENS_KEPT)
        self.head = 0.0  # displayed position of the newest token (eases: the path scrolls)
        self.newest = -1  # run position of the newest token
        self.candidates: tuple[str, ...] = ()
        self.probs = np.zeros(0, np.float32)  # displayed, eased
        self.target_probs = self.probs  # the newest token's
        self.entropy = 0.0
        self.pulse = 0.0
        self.tokens_seen = 0

    def begins_answer(self, frame: Frame) -> bool:
        """`frame` starts a new answer: the scene drops the one it shows."""
        return frame.index == 0 or frame.index <= self.newest

    def ingest(self, frame: Frame) -> None:
        """Make `frame` the newest token (cheap enough for a prompt's burst of frames)."""
        self.anatomy.ingest(frame)
        if self.begins_answer(frame):
            self.tokens.clear()
            self.arcs, self._arc_targets = {}, {}
            self.head = 0.0
        self.tokens.append(Token(frame.index, frame.text, frame.is_prompt))
        self.newest = frame.index
        self.tokens_seen += 1
        nodes = min(self.look.nodes_per_layer, frame.hidden.shape[1], frame.mlp.shape[1])
        hidden = self._hidden_norm(group_rms(frame.hidden, nodes))
        mlp = self._mlp_norm(group_rms(frame.mlp, nodes))
        mlp = np.vstack([np.full((1, mlp.shape[1]), 0.5, np.float32), mlp])  # embedding: no MLP
        sources = {"hidden": hidden, "mlp": mlp}
        level = sources[self.look.brightness]
        if self.look.hue == "layer":
            hue = np.repeat(np.linspace(0, 1, level.shape[0], dtype=np.float32)[:, None],
                            level.shape[1], axis=1)  # fmt: skip
        else:
            hue = sources[self.look.hue]
        if level.shape != self.level.shape:  # first frame, or another model
            self.rows = level.shape[0]
            self.level, self.hue = level.copy(), hue.copy()
        self._level_target, self._hue_target = level, hue
        self._arc_targets = self._strongest_attention(frame)
        self.candidates = frame.topk_text
        if self.probs.shape != frame.topk_probs.shape:
            self.probs = np.zeros_like(frame.topk_probs)
        self.target_probs = frame.topk_probs
        self.entropy = frame.entropy
        self.pulse = 1.0

    def _strongest_attention(self, frame: Frame) -> dict[tuple[int, int], float]:
        """The heads' mean attention over the tokens between the first in view (the attention
        sink, which takes most of it in most layers) and the newest (itself), renormalised to
        what is left, so arcs show where the rest of the attention goes."""
        per_layer = frame.attn.mean(axis=1)[:, 1:-1]  # [L, n-2]
        k = min(self.look.arcs_per_layer, per_layer.shape[1])
        if k == 0:
            return {}
        per_layer = per_layer / np.maximum(per_layer.sum(axis=1, keepdims=True), 1e-6)
        top = np.argpartition(-per_layer, k - 1, axis=1)[:, :k]  # [L, k]
        weights = np.take_along_axis(per_layer, top, axis=1)
        return {
            (layer, frame.context_start + 1 + int(col)): float(w)
            for layer, (cols, ws) in enumerate(zip(top, weights, strict=True))
            for col, w in zip(cols, ws, strict=True)
        }

    def attention_received(self) -> dict[int, float]:
        """Run position → the displayed arc weights pointing at it, summed over layers."""
        received: dict[int, float] = {}
        for (_, pos), weight in self.arcs.items():
            received[pos] = received.get(pos, 0.0) + weight
        return received

    def advance(self, dt: float) -> None:
        """Ease every displayed value toward its target over `dt` seconds."""
        keep = math.exp(-dt / self.look.ease_s)
        self.anatomy.advance(dt)
        self.level = self._level_target + (self.level - self._level_target) * keep
        self.hue = self._hue_target + (self.hue - self._hue_target) * keep
        self.probs = self.target_probs + (self.probs - self.target_probs) * keep
        self.head = self.newest + (self.head - self.newest) * keep
        self.pulse *= math.exp(-dt / self.look.pulse_s)
        arcs = {}
        for key in self.arcs.keys() | self._arc_targets.keys():
            target = self._arc_targets.get(key, 0.0)
            value = target + (self.arcs.get(key, 0.0) - target) * keep
            if value > 0.003 or target > 0:
                arcs[key] = value
        self.arcs = arcs
