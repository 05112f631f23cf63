"""Feature mapping: frames → the numbers the scene shows, eased smoothly between tokens.

Nodes: each row's residual stream (row 0 the embedding output, row l block l's output) is split
into `look.nodes_per_layer` contiguous groups of dimensions; node j of a row is group j.
- Brightness ("hidden"): the log of the group's RMS, normalised against running statistics per
  layer and per node (an exponential moving mean and variance over recent tokens), so early
  and late layers are both readable although their scales differ by orders of magnitude: it
  is relative to the node's and layer's recent past, not a size.
- Colour ("mlp"): how much of the node's own dimensions block l's MLP wrote for this token, the
  write's RMS over the group ÷ the stream's RMS there (measures.node_mlp_share), on a log scale
  from 10 % (cold) to 100 % (warm) (SmolLM2's nodes: 13 % to 90 %, median 36 %); the
  embedding row has no MLP and stays cold.
Attention: per layer, the heads' mean attention of the newest token over the earlier positions,
the first in view (the "attention sink") included, as it is; the `look.arcs_per_layer` largest
become arcs, their weight the share itself.

Every displayed value eases toward its target with time constant `look.ease_s`, so motion is
continuous at any frame rate; a new token starts a `pulse` that fades over `look.pulse_s`, and
`ages` count the seconds from the newest few (their waves up the tower, their pulses along the
arcs: at a model's pace several are under way at once).
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from visualizer import measures
from visualizer.anatomy import Anatomy
from visualizer.config import LookSettings
from visualizer.frame import Frame
from visualizer.measures import group_rms
from visualizer.running_norm import RunningNorm

MAX_TOKENS_KEPT = 2048  # the answer text keeps at most this many tokens (kiosk runs for days)
REST_LEVEL = 0.55  # every node before the first token: calm, nothing lit
WAVES = 4  # the newest tokens whose arrival is still shown travelling (features.ages)
SHARE_FLOOR = 0.1  # node colour: an MLP write of 10 % of the node's dimensions is cold, 100 % warm


@dataclass(frozen=True)
class Token:
    index: int
    text: str
    is_prompt: bool


def percent(p: float) -> str:
    """A probability as printed on screen, in whole percent, never rounded to a claim it does
    not make: what would round to 0 % but is more is "<1%", to 100 % but is less ">99%"."""
    printed = f"{p:.0%}"
    if printed == "0%" and p > 0:
        return "<1%"
    if printed == "100%" and p < 1:
        return ">99%"
    return printed


class SceneState:
    """The scene's CPU state: targets set by `ingest`, displayed values moved by `advance`."""

    def __init__(self, look: LookSettings) -> None:
        self.look = look
        self.anatomy = Anatomy()  # what the architecture scene shows
        self._hidden_norm = RunningNorm()
        self.rows = 0  # layers shown: embedding + blocks (0 until the first frame)
        self.level = np.zeros((0, 0), np.float32)  # [rows, N] displayed brightness 0..1
        self.hue = np.zeros((0, 0), np.float32)  # [rows, N] displayed cold→warm 0..1
        self._level_target = self.level
        self._hue_target = self.hue
        self.arcs: dict[tuple[int, int], float] = {}  # (layer, run position) → displayed weight
        self._arc_targets: dict[tuple[int, int], float] = {}
        self.tokens: deque[Token] = deque(maxlen=MAX_TOKENS_KEPT)
        self.ghost_tokens: deque[Token] = deque(maxlen=MAX_TOKENS_KEPT)  # the untouched run's
        self.head = 0.0  # displayed position of the newest token (eases: the path scrolls)
        self.newest = -1  # run position of the newest token
        self.candidates: tuple[str, ...] = ()
        self.probs = np.zeros(0, np.float32)  # displayed, eased
        self.target_probs = self.probs  # the newest token's
        self.entropy = 0.0
        self.pulse = 0.0
        self.ages: tuple[float, ...] = ()  # seconds since each of the newest WAVES tokens came
        self.tokens_seen = 0
        self.sink = -1  # run position of the first token in view (the attention sink)
        # the logit lens of the newest token: per lensed row (0 the embedding, l block l's
        # output), its top word and probability; the last row is the model's own answer
        self.lens: tuple[tuple[int, str, float], ...] = ()
        self.changed: tuple[str, ...] = ()  # the interventions on for the newest token
        self.ghost = None  # the untouched run's newest Ghost, while something is changed
        self.parted = -1  # the first run position where the ghost took another token

    def rest(self, layers: int, width: int) -> None:
        """Before a model's first token: its web at rest, every node of its `layers` blocks and
        embedding dim and cold (no token has been read, so nothing is lit)."""
        if self.tokens_seen:
            return
        nodes = min(self.look.nodes_per_layer, width)
        self.rows = layers + 1
        self.level = np.full((self.rows, nodes), REST_LEVEL, np.float32)
        self.hue = np.zeros((self.rows, nodes), np.float32)
        self._level_target, self._hue_target = self.level, self.hue

    def begins_answer(self, frame: Frame) -> bool:
        """`frame` starts a new answer: the scene drops the one it shows."""
        return frame.index == 0 or frame.index <= self.newest

    def ingest(self, frame: Frame) -> None:
        """Make `frame` the newest token (cheap enough for a prompt's burst of frames)."""
        self.anatomy.ingest(frame)
        if self.begins_answer(frame):
            self.parted = -1
            self.ghost_tokens.clear()
            self.tokens.clear()
            self.arcs, self._arc_targets = {}, {}
            self.head = 0.0
        self.tokens.append(Token(frame.index, frame.text, frame.is_prompt))
        if frame.ghost is not None:
            self.ghost_tokens.append(Token(frame.index, frame.ghost.text, frame.is_prompt))
        self.newest = frame.index
        self.tokens_seen += 1
        nodes = min(self.look.nodes_per_layer, frame.hidden.shape[1])
        hidden = self._hidden_norm(group_rms(frame.hidden, nodes))
        share = measures.log_fraction(measures.node_mlp_share(frame, nodes), SHARE_FLOOR, 1.0)
        mlp = np.vstack([np.zeros((1, nodes), np.float32), share])  # the embedding: no MLP
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
        lensed = [row for row in range(len(frame.lens_text)) if frame.lens_ids[row, 0] >= 0]
        self.lens = tuple((row, frame.lens_text[row], float(frame.lens_probs[row, 0]))
                          for row in lensed)  # fmt: skip
        self.changed, self.ghost = frame.changed, frame.ghost
        ghost = frame.ghost
        if ghost is None:
            self.parted = -1
        elif self.parted < 0 and ghost.token_id != frame.token_id:
            self.parted = frame.index  # where the two answers part
        self.candidates = frame.topk_text
        if self.probs.shape != frame.topk_probs.shape:
            self.probs = np.zeros_like(frame.topk_probs)
        self.target_probs = frame.topk_probs
        self.entropy = frame.entropy
        self.pulse = 1.0
        self.ages = (0.0, *self.ages[: WAVES - 1])

    def _strongest_attention(self, frame: Frame) -> dict[tuple[int, int], float]:
        """Per layer, the earlier positions with the largest shares of the heads' mean
        attention, the sink included (it takes most of it in most layers), shares as they
        are."""
        positions, shares, self.sink = measures.attention_share(frame)
        k = min(self.look.arcs_per_layer, shares.shape[1])
        if k == 0:
            return {}
        top = np.argpartition(-shares, k - 1, axis=1)[:, :k]  # [L, k]
        weights = np.take_along_axis(shares, top, axis=1)
        return {
            (layer, int(positions[col])): float(w)
            for layer, (cols, ws) in enumerate(zip(top, weights, strict=True))
            for col, w in zip(cols, ws, strict=True)
        }

    def candidate_rows(self, n: int) -> list[tuple[str, float, str]]:
        """The top `n` next-token candidates as drawn: (text, the bar's eased length, the
        printed probability, the newest frame's own)."""
        count = min(n, len(self.candidates), len(self.target_probs))
        return [(self.candidates[i], float(self.probs[i]), percent(float(self.target_probs[i])))
                for i in range(count)]  # fmt: skip

    def slot_of(self, position: int) -> float:
        """Where a run position lies on the token path (0 = the newest, fractional while it
        scrolls). The first token in view, the sink, stays at the far end of the path once it
        is older than the path is long, so its share is still drawn."""
        slot = self.head - position
        if position == self.sink:
            return min(slot, self.look.history - 1)
        return slot

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
        self.ages = tuple(age + dt for age in self.ages)
        arcs = {}
        for key in self.arcs.keys() | self._arc_targets.keys():
            target = self._arc_targets.get(key, 0.0)
            value = target + (self.arcs.get(key, 0.0) - target) * keep
            if value > 0.003 or target > 0:
                arcs[key] = value
        self.arcs = arcs
