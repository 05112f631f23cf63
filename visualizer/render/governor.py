"""Holds the frame rate: lowers the render scale to PREFERRED_SCALE, then the detail (the share
of links and arcs drawn), then the scale again, when frames take too long, and raises them in
reverse when there is room.

On a CPU renderer most of a frame is fixed cost (text, the full-size passes, Python): a step of
scale costs a few percent of a frame, so the governor tries the next step up whenever frames fit
the budget; a step up that proves too slow is left at once and tried again only REMEMBER_FRAMES
later. (Raising only below 0.7 of the budget, it stayed at its floor for good once the model's
loading had pushed it there.) Below PREFERRED_SCALE the scale is kept before the detail: at
render scale 0.3 the upscaled web is blurred and stair-stepped, while a lower detail drops the
weakest arcs and a random share of the links. Above it the scale goes first, the strong lever
there (llvmpipe's cost at a large scale is fill rate). Below it the budget is SHARP_SLACK times
longer: the scale is lowered under PREFERRED_SCALE only for frames over that, and climbs back
to it under that, so a picture that is sharp at a few frames a second under the cap stays sharp.
"""

from collections import deque

import numpy as np

STEP = 0.05  # scale changes in these steps (each change reallocates the scene textures)
DETAIL_STEP = 0.1
SETTLE_FRAMES = 12  # frames between changes, so one change is measured before the next
DETAIL_MIN = 0.35
PREFERRED_SCALE = 0.5  # the scale is lowered to this, then the detail, then the scale again
LOWER_ABOVE = 1.08  # the settling frames' median above this share of the budget lowers a step
SHARP_SLACK = 1.1  # below PREFERRED_SCALE frames may take this much longer (at a 60 fps cap:
# lowered under 50.5 fps, raised toward it over 54.5)
REMEMBER_FRAMES = 600  # a step up that proved too slow is tried again after this many frames

Setting = tuple[float, float]  # render scale, detail


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
        self._frames = 0
        self._too_slow: dict[Setting, int] = {}  # a step up that proved too slow: when
        self._probing = False  # the setting is a step up, not yet judged

    def record(self, frame_s: float) -> None:
        """Account one frame's duration; maybe change the scale or the detail."""
        self.frame_times.append(frame_s)
        self._frames += 1
        self._since_change += 1
        if not self.adaptive or self._since_change < SETTLE_FRAMES:
            return
        recent = float(np.median(list(self.frame_times)[-SETTLE_FRAMES:]))
        probe, self._probing = self._probing, False
        lower, higher, kept = self._lower(), self._higher(), self._kept_scale()
        sharp = lower is not None and lower[0] < kept - 1e-6  # lowering goes under it
        if recent > self.budget * LOWER_ABOVE * (SHARP_SLACK if sharp else 1.0):
            if lower is not None:
                if probe:
                    self._too_slow[(self.scale, self.detail)] = self._frames
                self._change(lower)
        elif recent < self.budget * (SHARP_SLACK if self.scale < kept - 1e-6 else 1.0):
            left = self._too_slow.get(higher, -REMEMBER_FRAMES)
            if higher is not None and self._frames - left >= REMEMBER_FRAMES:
                self._change(higher)
                self._probing = True

    def _lower(self) -> Setting | None:
        kept = self._kept_scale()
        if self.scale > kept + 1e-6:
            return max(kept, round(self.scale - STEP, 2)), self.detail
        if self.detail > DETAIL_MIN + 1e-6:
            return self.scale, max(DETAIL_MIN, round(self.detail - DETAIL_STEP, 2))
        if self.scale > self.min_scale + 1e-6:
            return max(self.min_scale, round(self.scale - STEP, 2)), self.detail
        return None

    def _higher(self) -> Setting | None:
        kept = self._kept_scale()
        if self.scale < kept - 1e-6:
            return min(kept, round(self.scale + STEP, 2)), self.detail
        if self.detail < 1.0 - 1e-6:
            return self.scale, min(1.0, round(self.detail + DETAIL_STEP, 2))
        if self.scale < self.max_scale - 1e-6:
            return min(self.max_scale, round(self.scale + STEP, 2)), self.detail
        return None

    def _kept_scale(self) -> float:
        return min(max(PREFERRED_SCALE, self.min_scale), self.max_scale)

    def _change(self, setting: Setting) -> None:
        self.scale, self.detail = setting
        self._since_change = 0

    def stats(self) -> tuple[float, float, float]:
        """Median fps, median and 99th-percentile frame time in ms over the recent frames."""
        if not self.frame_times:
            return 0.0, 0.0, 0.0
        times = np.array(self.frame_times)
        median = float(np.median(times))
        return 1.0 / max(median, 1e-9), 1000 * median, 1000 * float(np.percentile(times, 99))
