"""How long a headless video waits for the model in a frame.

Its first frame waits for the model's first frames, up to FIRST_FRAMES_WAIT_S: the video is
the answer's, not the loading screen's (a slow start of the model left a short video with no
answer in it). Then, while the model answers, each frame waits until the video's time is the
wall time since they came: drawn faster than real time, a video outran the model and ended
before its answer, how early depending on the machine. So its tokens come at the pace the
model made them. A live recording, on the real clock, waits for nothing: its time is the
wall's; nor does a render of a saved run, which was asked for nothing (its frames are at hand,
on the video's own timeline)."""

import time

from visualizer.clock import FixedStepClock, RealClock
from visualizer.render.intake import Intake

HEADLESS_LOADING_WAIT_S = 0.25
FIRST_FRAMES_WAIT_S = 600.0  # a headless video's wait for a model that loads (a large one on CPU)


class VideoPace:
    def __init__(self, clock: RealClock | FixedStepClock) -> None:
        self.clock = clock
        self.started = time.perf_counter()
        self.paced_from: tuple[float, float] | None = None  # (clock, wall) at its answer

    def wait(self, intake: Intake, tokens_seen: int) -> float:
        """Seconds this frame still waits for the model, of a video being made."""
        if not (isinstance(self.clock, FixedStepClock) and intake.request):
            return 0.0
        if tokens_seen == 0 and not intake.pending:
            waited = time.perf_counter() - self.started
            return (HEADLESS_LOADING_WAIT_S if intake.source.alive and waited < FIRST_FRAMES_WAIT_S
                    else 0.0)  # fmt: skip
        if intake.idle:
            self.paced_from = None  # the next answer is paced from its own first frames
            return 0.0
        if self.paced_from is None:
            self.paced_from = (self.clock.now, time.perf_counter())
        video, wall = self.paced_from
        return max(0.0, (self.clock.now - video) - (time.perf_counter() - wall))
