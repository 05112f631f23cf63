"""Holds the frame rate: lowers the render scale (then the detail) when frames take too long,
and raises them again when there is room. llvmpipe's cost is mostly fill rate, so the scale
(the scene's resolution before upscaling) is the strongest lever."""

from collections import deque

import numpy as np

STEP = 0.05  # scale changes in these steps (each change reallocates the scene textures)
SETTLE_FRAMES = 12  # frames between changes, so one change is measured before the next
DETAIL_MIN = 0.35


class Governor:
    def __init__(
        self, target_fps: int, min_scale: float, max_scale: float, adaptive: bool = True
    ) -> None:
        """With `adaptive` False it only measures (fixed-step renders must be reproducible)."""
        self.adaptive = adaptive
        self.budget = 1.0 / target_fps
        self.min_scale, self.max_scale = min_scale, max_scale
        self.scale = max_scale
        self.detail = 1.0
        self.frame_times: deque[float] = deque(maxlen=240)  # seconds, for the HUD and bench
        self._since_change = 0

    def record(self, frame_s: float) -> None:
        """Account one frame's duration; maybe change the scale or the detail."""
        self.frame_times.append(frame_s)
        self._since_change += 1
        if not self.adaptive or self._since_change < SETTLE_FRAMES:
            return
        recent = float(np.median(list(self.frame_times)[-SETTLE_FRAMES:]))
        if recent > self.budget * 1.08:
            if self.scale > self.min_scale + 1e-6:
                self.scale = max(self.min_scale, round(self.scale - STEP, 2))
            else:
                self.detail = max(DETAIL_MIN, self.detail - 0.1)
            self._since_change = 0
        elif recent < self.budget * 0.7:
            if self.detail < 1.0:
                self.detail = min(1.0, self.detail + 0.1)
            elif self.scale < self.max_scale - 1e-6:
                self.scale = min(self.max_scale, round(self.scale + STEP, 2))
            self._since_change = 0

    def stats(self) -> tuple[float, float, float]:
        """Median fps, median and 99th-percentile frame time in ms over the recent frames."""
        if not self.frame_times:
            return 0.0, 0.0, 0.0
        times = np.array(self.frame_times)
        median = float(np.median(times))
        return 1.0 / max(median, 1e-9), 1000 * median, 1000 * float(np.percentile(times, 99))
