"""The kiosk's source: its model (local or remote), with the last finished answer played again
while that model loads or restarts, so a visitor never faces an empty screen. The replayed
frames come marked as a replay (the window says so); the live answers are kept (attract.py)
as they pass."""

from collections.abc import Callable
from dataclasses import replace

from visualizer.attract import RATE, REST_S, Attract
from visualizer.config import GenerationSettings
from visualizer.handoff import Batch
from visualizer.sources import FrameSource
from visualizer.sources.player import TracePlayer, schedule

LOADING = ("starting", "loading", "reconnecting")


class ReplayWhileLoading:
    def __init__(self, source: FrameSource, attract: Attract, now: Callable[[], float]) -> None:
        self.source, self.attract, self.now = source, attract, now
        self.name = source.name
        self._player: TracePlayer | None = None
        self._state = ""

    def start(self) -> "ReplayWhileLoading":
        self.source.start()
        return self

    def drain(self, timeout: float = 0.0) -> Batch:
        batch = self.source.drain(timeout if not self.attract.frames else 0.0)
        status = batch.status
        if status.state in LOADING and self.attract.frames and batch.failure is None:
            if self._player is None:
                frames = self.attract.frames
                self._player = TracePlayer(frames, schedule(frames, RATE, 0.0), self.now,
                                           replace(status, prompt=self.attract.prompt),
                                           rest_s=REST_S).start()  # fmt: skip
            played = self._player.drain().frames
            status = replace(status, prompt=self.attract.prompt)
            return replace(batch, frames=batch.frames + played, status=status, replay=True)
        self._player = None
        for frame in batch.frames:
            self.attract.take(frame)
        if status.state == "finished" and self._state != "finished":
            self.attract.keep(status.prompt)  # the answer to replay from now on
        self._state = status.state
        return batch

    def generate(self, prompt: str, gen: GenerationSettings | None = None, detail=None,
                 interventions=None) -> int:  # fmt: skip
        self.attract.begin()
        return self.source.generate(prompt, gen, detail, interventions)

    def intervene(self, interventions) -> None:
        self.source.intervene(interventions)

    def cancel(self) -> None:
        self.source.cancel()

    def restart(self, why: str = "") -> None:
        self.source.restart(why)

    def stop(self, timeout: float = 1.0) -> None:
        self.source.stop(timeout)

    @property
    def alive(self) -> bool:
        return self.source.alive
