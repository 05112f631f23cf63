"""The intake: the app's source, what it is asked (the next prompt's generation settings and
interventions) and what arrives from it on its way into the scene. The source's latest status
and failures are kept here; its frames wait in a queue, where a pause holds the newest
PENDING_LIMIT of them and counts the rest. The model's own tokens are timed for the HUD's tok/s
(frames played again, or from a recorded run, are not the model's speed)."""

import time
from collections import deque
from collections.abc import Iterator

from visualizer.config import Settings
from visualizer.frame import Frame
from visualizer.handoff import Batch, Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.sources import FrameSource

RATE_WINDOW_S = 3.0  # tok/s is counted over this much of the recent past
PENDING_LIMIT = 4096  # frames a pause holds (the operator is told how many more it dropped)


class Intake:
    def __init__(self, source: FrameSource, settings: Settings) -> None:
        self.source = source
        self.gen = settings.generation  # for the next prompt
        iv = settings.intervene
        self.interventions = interventions_from(iv.ablate, iv.steer)  # for the next answer
        self.status = Status("starting")
        self.request = 0  # the last answer asked for
        self.prompt = ""  # the prompt of the answer the source is on (its status says)
        self.model_name = ""
        self.failure: str | None = None  # the source failed (a bug, a dead process)
        self.user_failure: str | None = None  # the source refused bad input
        self.pending: deque[Frame] = deque(maxlen=PENDING_LIMIT)
        self.arrivals: deque[float] = deque(maxlen=256)  # when generated tokens arrived
        self.dropped = 0  # frames the handoff let go because the screen fell behind
        self.paused = False
        self.paused_dropped = 0  # frames beyond PENDING_LIMIT that a pause could not hold
        self.replaying = False  # the scene shows an earlier answer again (the kiosk's replay)
        self.recorded = False  # the scene shows a recorded run (a trace), not a model's tokens

    def receive(self, wait: float) -> Batch:
        """What the source has sent since the last call (waiting at most `wait` seconds for
        it), queued; the batch is returned for what the app does about it."""
        batch = self.source.drain(wait)
        now = time.perf_counter()
        self.status, self.prompt = batch.status, batch.status.prompt
        self.model_name = batch.status.model or self.model_name
        if batch.frames:
            self.replaying, self.recorded = batch.replay, batch.recorded
        self.dropped += batch.dropped
        overflow = len(self.pending) + len(batch.frames) - PENDING_LIMIT
        self.paused_dropped += max(0, overflow)  # held the newest; said on screen
        self.pending.extend(batch.frames)
        if not (batch.replay or batch.recorded):  # tok/s: the model's own tokens only
            self.arrivals.extend(now for f in batch.frames if not f.is_prompt)
        if batch.failure is not None:
            if batch.failure.user_error:
                self.user_failure = batch.failure.message
            else:
                self.failure = batch.failure.message
        return batch

    def generate(self, prompt: str) -> None:
        self.request = self.source.generate(prompt, self.gen, interventions=self.interventions)
        self.failure = self.user_failure = None

    def intervene(self, interventions: Interventions) -> None:
        """What the model changes, from the next token of the answer in progress (and for the
        answers after it); a recorded run raises UserError."""
        self.interventions = interventions
        self.source.intervene(interventions)

    def restart(self, why: str) -> None:
        """A fresh model process, or a fresh connection: everything starts over."""
        self.source.restart(why)
        self.pending.clear()
        self.status = Status("starting")
        self.model_name = ""
        self.request = 0
        self.failure = self.user_failure = None

    @property
    def idle(self) -> bool:
        """Nothing being generated or waiting to be shown."""
        generating = self.status.state == "generating" or self.status.request < self.request
        return not generating and not self.pending and self.status.state != "starting"

    @property
    def refused(self) -> bool:
        """The model never loaded because of bad input (a missing model, a non-model folder)."""
        return bool(self.user_failure) and not self.model_name

    @property
    def trouble(self) -> str | None:
        """Why the source needs healing (it failed, or it died), or None."""
        if self.failure:
            return self.failure
        if self.source.alive:
            return None
        why = self.user_failure  # what it said as it stopped (a refused token, say)
        return f"{self.source.name} stopped: {why}" if why else f"{self.source.name} died"

    def take_refusal(self) -> str | None:
        """The last prompt the model refused (bad input), once."""
        refusal, self.user_failure = self.user_failure, None
        return refusal

    def arrived(self) -> Iterator[Frame]:
        """The frames that enter the scene now, oldest first: all of them, or none while paused."""
        while self.pending and not self.paused:
            yield self.pending.popleft()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.paused_dropped = 0

    def step(self) -> Frame | None:
        """The → key: pause, or while paused the next held frame (None when none is held)."""
        if not self.paused:
            self.paused = True
            return None
        return self.pending.popleft() if self.pending else None

    def resume_afresh(self) -> None:
        """A new prompt: what was held of the last answer is let go, and the screen moves on."""
        self.paused = False
        self.pending.clear()

    def tokens_per_second(self) -> float:
        """The model's generated tokens per second, as they arrived over the last RATE_WINDOW_S."""
        now = time.perf_counter()
        recent = [t for t in self.arrivals if now - t < RATE_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def rate(self) -> str:
        """tok/s of the model, or what the frames on screen are instead."""
        if self.replaying:
            return "replay (no model tokens: no tok/s)"
        if self.recorded:
            return "recorded run (no model tokens: no tok/s)"
        return f"{self.tokens_per_second():5.1f} tok/s"
