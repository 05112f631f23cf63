"""What the model did at one token that is worth a look, read from its frame and the one before
it. The film cuts on these (film/events.py) and the camera that directs itself moves to them
(render/direction.py); each rule is written once, here.

- a spike: the entropy jumps SPIKE_JUMP nats or more above the token before's, to SPIKE_FLOOR or
  more (the model is suddenly unsure);
- a lens flip: the logit lens's top word changes between two lensed layers late in the tower (at
  row FLIP_FROM × rows or above) and stays so to the output (the model changed its mind late).
"""

import numpy as np

from visualizer.frame import Frame

SPIKE_JUMP = 1.2  # nats above the position before
SPIKE_FLOOR = 2.5  # nats
FLIP_FROM = 0.6  # of the rows: a change of mind this late in the tower


def is_spike(entropy: float, before: float) -> bool:
    """The entropy `entropy` is a spike after `before` (nats)."""
    return entropy >= SPIKE_FLOOR and entropy - before >= SPIKE_JUMP


def lens_flip(f: Frame) -> tuple[int, str, str] | None:
    """The lensed row where the lens's top word last changed, if that is late in the tower and
    the word it changed to is the output's: (row, word below, word there)."""
    top = f.lens_ids[:, 0]
    rows = np.flatnonzero(top >= 0)
    if len(rows) < 3:
        return None
    last = top[rows[-1]]
    changed = [i for i in range(1, len(rows)) if top[rows[i]] != top[rows[i - 1]]]
    if not changed or any(top[r] != last for r in rows[changed[-1] :]):
        return None
    row = int(rows[changed[-1]])
    if row < FLIP_FROM * rows[-1]:
        return None
    return row, f.lens_text[int(rows[changed[-1] - 1])], f.lens_text[row]
