"""Time for the render loop, injected so recordings and tests are exact.

RealClock follows the wall clock (the live window); FixedStepClock advances by exactly 1/fps per
frame (headless renders and recordings: the same frames whatever the machine's speed).
"""

import time

MAX_STEP_S = 0.1  # a stall (a dragged window, a breakpoint) must not make everything jump


class RealClock:
    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.now = 0.0  # seconds since start, as the animation sees them (a stall is capped)

    @property
    def wall(self) -> float:
        """Seconds since start on the wall, stalls and all: a live recording's clock, so that
        its length is the time it was recording."""
        return self._last - self._start

    @property
    def wall_now(self) -> float:
        """Seconds since start on the wall, read now (`wall` is the last frame's moment)."""
        return time.perf_counter() - self._start

    def tick(self) -> float:
        """Advance to now; returns the frame's time step in seconds."""
        t = time.perf_counter()
        dt = min(t - self._last, MAX_STEP_S)
        self._last = t
        self.now += dt
        return dt


class FixedStepClock:
    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps
        self.frames = 0
        self.now = 0.0

    def tick(self) -> float:
        self.frames += 1
        self.now = self.frames * self.step
        return self.step

    @property
    def wall(self) -> float:
        return self.now

    @property
    def wall_now(self) -> float:
        """No time passes between a fixed step's frames: the last one's moment."""
        return self.now
