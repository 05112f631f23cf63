"""A talk's source: the model's own, with a saved run (a trace) played in front of it when a cue
asks, until the next prompt. While the trace plays, the model's answer in progress is cancelled
and what the model still sends of it is let go; the status keeps the model's own (its request
count, architecture, load state) with the trace's prompt and progress, so that the window treats
the played run as any answer: the scene starts over with it, and the prompt box opens after it."""

from collections.abc import Callable, Sequence
from dataclasses import replace

from visualizer.config import GenerationSettings
from visualizer.frame import Frame
from visualizer.handoff import Batch, Status
from visualizer.sources import FrameSource
from visualizer.sources.player import TracePlayer, schedule

TOKEN_RATE = 8.0  # a played run's tokens a second (render's default)


class TraceInFront:
    def __init__(self, source: FrameSource, now: Callable[[], float]) -> None:
        self.source, self.now = source, now
        self.name = source.name
        self._player: TracePlayer | None = None

    def play(self, frames: Sequence[Frame], prompt: str) -> None:
        """Play `frames` (a trace's, answering `prompt`) from now, at TOKEN_RATE."""
        self.source.cancel()
        self._player = TracePlayer(frames, schedule(frames, TOKEN_RATE, 0.0), self.now,
                                   Status("generating", prompt=prompt)).start()  # fmt: skip

    def start(self) -> "TraceInFront":
        self.source.start()
        return self

    def drain(self, timeout: float = 0.0) -> Batch:
        batch = self.source.drain(timeout if self._player is None else 0.0)
        if self._player is None:
            return batch
        played = self._player.drain()
        status = replace(batch.status, state=played.status.state, prompt=played.status.prompt)
        return replace(batch, frames=played.frames, status=status, recorded=True)

    def generate(self, prompt: str, gen: GenerationSettings | None = None, detail=None,
                 interventions=None) -> int:  # fmt: skip
        self._player = None
        return self.source.generate(prompt, gen, detail, interventions)

    def intervene(self, interventions) -> None:
        self.source.intervene(interventions)  # the model's next answer; a trace keeps its own

    def cancel(self) -> None:
        self.source.cancel()

    def restart(self, why: str = "") -> None:
        self._player = None
        self.source.restart(why)

    def stop(self, timeout: float = 1.0) -> None:
        self.source.stop(timeout)

    @property
    def alive(self) -> bool:
        return self.source.alive
