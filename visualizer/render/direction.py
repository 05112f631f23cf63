"""The camera that directs itself, for a room with nobody at the mouse (a talk, a gallery): it
moves in close to what the model does, never faster than the eye can follow, and back to the
whole tower when nothing happens.

What it moves to, read from each answer token's frame (the prompt's burst moves nothing), the
first that holds of:
- an entropy spike (moments.is_spike): the top of the tower, where the unsure answer leaves it;
- a block that changed the stream SURPRISE times as much as it usually does
  (measures.update_ratio against its running mean): that block's output row;
- a lens flip (moments.lens_flip): the row where the model changed its mind late. A small
  model changes its mind late at most tokens, so a flip moves the camera in from the wide shot
  only, never from one close shot to the next.
A move eases in and out (smoothstep) over MOVE_S, longer for a longer way (12 to 24 frames at
30 fps); every shot is held at least HOLD_S, and a close one at most CLOSE_S before it eases
back to the whole tower, as it does when a new answer starts. It reads only frames and time
steps, so an offline render frames each of its frames the same way every time.
"""

from typing import NamedTuple

import numpy as np

from visualizer import measures
from visualizer.frame import Frame
from visualizer.moments import is_spike, lens_flip
from visualizer.render import layout

MOVE_S = (0.4, 0.8)  # the shortest and the longest move: 12 and 24 frames at 30 fps
LONG_WAY = 1.5  # a move this long (world units, height and distance together) takes the longest
HOLD_S = 3.0  # a shot lasts at least this long
CLOSE_S = 6.0  # a close shot at most this long, then back to the whole tower
SURPRISE = 3.0  # a block's write this many times its usual is worth a look
USUAL_RATE = 0.1  # weight of the newest token in a block's usual write
CLOSE = 7.6  # the camera's distance in close (the wide shot's: WIDE.distance)
LIFT = 0.7  # the camera's height per unit of the row's height: the row a little above centre


class Shot(NamedTuple):
    height: float  # the eye and its target lifted by this much (world units)
    distance: float
    reason: str  # what it looks at: "wide", "lens flip at row 24" …
    rank: int = 0  # 3 a spike, 2 a loud block, 1 a lens flip (0: wide)


WIDE = Shot(0.0, 9.5, "wide")


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Direction:
    """Chooses the camera's height and distance; the camera keeps its orbit and drift. `auto`:
    it moves to what the model does by itself (a talk's, a gallery's); else only when a cue
    frames a shot (`hold`)."""

    def __init__(self, auto: bool = True) -> None:
        self.auto = auto
        self.held = False  # a cue's shot, kept until a cue lets go (`release`)
        self.shot = WIDE
        self._from = WIDE
        self._move_s = MOVE_S[0]
        self._t = MOVE_S[1]  # into the current move (past its end: arrived)
        self._held = HOLD_S  # since the current move began
        self._usual: np.ndarray | None = None  # [L] each block's running update ratio
        self._entropy: float | None = None

    @property
    def framing(self) -> tuple[float, float]:
        """(height, distance) now."""
        a = smoothstep(self._t / self._move_s)
        return (self._from.height + (self.shot.height - self._from.height) * a,
                self._from.distance + (self.shot.distance - self._from.distance) * a)  # fmt: skip

    @property
    def settled(self) -> bool:
        """Arrived in the wide shot or a held one: nothing more will move until a frame comes."""
        return (self.shot is WIDE or self.held) and self._t >= self._move_s

    def see(self, frame: Frame) -> None:
        """A frame entered the scene (a camera that only cues move reads nothing of it)."""
        if not self.auto:
            return
        ratio = measures.update_ratio(frame)
        usual, before = self._usual, self._entropy
        fresh = usual is None or usual.shape != ratio.shape
        self._usual = ratio if fresh else usual + USUAL_RATE * (ratio - usual)
        self._entropy = frame.entropy
        if self.held:
            return
        if frame.index == 0 or frame.is_prompt:  # a new answer: the whole tower
            if self.shot is not WIDE:
                self._go(WIDE)
            return
        shot = None if fresh else self._moment(frame, before, ratio, usual)
        if shot is None or self._held < HOLD_S or shot[:2] == self.shot[:2]:
            return
        if self.shot is WIDE or shot.rank > 1:
            self._go(shot)

    def advance(self, dt: float) -> tuple[float, float]:
        """Move on `dt` seconds; the (height, distance) to draw with."""
        self._t += dt
        self._held += dt
        if self._held >= CLOSE_S and self.shot is not WIDE and not self.held:
            self._go(WIDE)
        return self.framing

    def _moment(self, frame: Frame, before: float | None, ratio: np.ndarray,
                usual: np.ndarray) -> Shot | None:  # fmt: skip
        rows = frame.hidden.shape[0]
        flip = lens_flip(frame)
        if before is not None and is_spike(frame.entropy, before):
            return self.close_on(rows - 1, rows, "entropy spike", 3)
        surprise = ratio / np.maximum(usual, measures.EPS)
        block = int(np.argmax(surprise))
        if surprise[block] >= SURPRISE:
            return self.close_on(block + 1, rows, f"block {block} wrote {surprise[block]:.1f}×", 2)
        if flip is not None:
            return self.close_on(flip[0], rows, f"lens flip at row {flip[0]}", 1)
        return None

    @staticmethod
    def close_on(row: int, rows: int, reason: str, rank: int = 0) -> Shot:
        """In close on lensed row `row` of `rows`."""
        return Shot(LIFT * float(layout.row_height(rows)[row]), CLOSE, reason, rank)

    def hold(self, shot: Shot) -> None:
        """Ease to `shot` and keep it (a cue's framing) until `release`."""
        self._go(shot)
        self.held = True

    def release(self) -> None:
        """Let go of a held shot: back to the whole tower, and moving by itself if `auto`."""
        self.held = False
        if self.shot is not WIDE:
            self._go(WIDE)

    def resume(self, height: float, distance: float) -> None:
        """The mouse let the camera go at (height, distance): ease from there to the shot."""
        self._move(Shot(height, distance, "the mouse's"), self.shot)

    def _go(self, shot: Shot) -> None:
        self._move(Shot(*self.framing, "between"), shot)
        self._held = 0.0

    def _move(self, start: Shot, shot: Shot) -> None:
        way = abs(shot.height - start.height) + abs(shot.distance - start.distance)
        self._move_s = MOVE_S[0] + (MOVE_S[1] - MOVE_S[0]) * min(way / LONG_WAY, 1.0)
        self._from, self.shot, self._t = start, shot, 0.0

