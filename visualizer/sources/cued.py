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
from visualizer.sources import FrameSource, InFront
from visualizer.sources.player import TracePlayer, schedule

TOKEN_RATE = 8.0  # a played run's tokens a second (render's default)


class TraceInFront(InFront):
    def __init__(self, source: FrameSource, now: Callable[[], float]) -> None:
        super().__init__(source)
        self.now = now
        self._player: TracePlayer | None = None

    def play(self, frames: Sequence[Frame], prompt: str) -> None:
        """Play `frames` (a trace's, answering `prompt`) from now, at TOKEN_RATE."""
        self.source.cancel()
        self._player = TracePlayer(frames, schedule(frames, TOKEN_RATE, 0.0), self.now,
                                   Status("generating", prompt=prompt)).start()  # fmt: skip

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

    def restart(self, why: str = "") -> None:
        self._player = None
        self.source.restart(why)
