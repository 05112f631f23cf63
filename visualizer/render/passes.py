"""What each pass of a frame costs, for the HUD (H) and `neuroweb bench`.

A CPU renderer (Mesa llvmpipe) has no GPU timer queries, and its rasterizer threads run behind
the Python that queues their work. So while someone reads the figures, each pass first waits
for the GL work queued before it and is timed to the end of its own: the passes then add up to
the frame, at the price of the overlap between Python and rasterizing. Nothing is measured (or
waited for) otherwise.
"""

import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager

import moderngl
import numpy as np

KEPT = 120  # frames of each pass's times kept


class PassTimes:
    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.enabled = False
        self._times: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=KEPT))

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Time the GL work and Python inside, as the pass `name` (when enabled)."""
        if not self.enabled:
            yield
            return
        self.ctx.finish()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ctx.finish()
            self._times[name].append(1000 * (time.perf_counter() - start))

    def medians(self) -> dict[str, float]:
        """Each pass's median in milliseconds, the costliest first."""
        medians = {name: float(np.median(t)) for name, t in self._times.items() if t}
        return dict(sorted(medians.items(), key=lambda item: -item[1]))
