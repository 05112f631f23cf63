"""Where frames come from: one seam, FrameSource, for every source of them.

- `local.LocalSource`: the model in a child process of this one;
- `remote.RemoteSource`: a model served by `neuroweb serve`, over the network;
- `player.TracePlayer`: a finished run's frames, released on a schedule (an offline render,
  the kiosk's replay of its last answer, which attract.py puts in front of a source that is
  loading).

The window, `render`, `trace`, `snapshot`, the kiosk and `soak` all take frames through
`drain()`, and ask for answers through `generate()`.
"""

import os
from typing import Protocol

from msgspec import structs

from visualizer.config import GenerationSettings, Settings
from visualizer.detail import Detail
from visualizer.errors import UserError
from visualizer.handoff import Batch
from visualizer.interventions import Interventions


class FrameSource(Protocol):
    name: str  # what to call it on screen ("the model process", "the server at …")

    def start(self) -> "FrameSource":
        """Begin (load the model, connect); returns itself."""

    def drain(self, timeout: float = 0.0) -> Batch:
        """The frames that arrived since the last drain, the latest status, a failure once;
        waits at most `timeout` seconds when there is nothing new. Never blocks the caller
        longer than that."""

    def generate(
        self, prompt: str, gen: GenerationSettings | None = None, detail: Detail | None = None,
        interventions: Interventions | None = None,
    ) -> int:
        """Start an answer (one in progress is cancelled first); returns its request number,
        which the statuses about it carry. `detail`: what each frame carries; `interventions`:
        what it changes from its first token (the preset's by default)."""

    def intervene(self, interventions: Interventions) -> None:
        """Change what the answer in progress changes, from its next token."""

    def cancel(self) -> None:
        """Stop the answer in progress."""

    def restart(self, why: str = "") -> None:
        """Heal: a fresh model process, or a fresh connection, in place of this one."""

    def stop(self, timeout: float = 1.0) -> None:
        """End everything within `timeout` seconds, from any state."""

    @property
    def alive(self) -> bool:
        """False once it cannot deliver frames any more without a restart."""


class InFront:
    """A FrameSource in front of another, `source`: all it does not change is the source's own.
    A stand-in (the kiosk's replay while loading, a talk's played trace) changes `drain`, and
    `generate` or `restart` where it must."""

    def __init__(self, source: FrameSource) -> None:
        self.source, self.name = source, source.name

    def start(self) -> "InFront":
        self.source.start()
        return self

    def drain(self, timeout: float = 0.0) -> Batch:
        return self.source.drain(timeout)

    def generate(self, prompt: str, gen: GenerationSettings | None = None,
                 detail: Detail | None = None, interventions: Interventions | None = None
                 ) -> int:  # fmt: skip
        return self.source.generate(prompt, gen, detail, interventions)

    def intervene(self, interventions: Interventions) -> None:
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


def open_source(settings: Settings, lossless: bool = False) -> FrameSource:
    """The model of `settings`: `model.source` (HOST:PORT of a `neuroweb serve`) if set, else
    a local model process. Not started."""
    if settings.model.source:
        from visualizer.sources.remote import RemoteSource

        return RemoteSource(settings, lossless=lossless)
    from visualizer.sources.local import LocalSource

    return LocalSource(settings, lossless=lossless)


def check(batch: Batch) -> None:
    """A failure in the batch, raised: bad input as UserError (exit 2), a bug as RuntimeError."""
    if batch.failure is not None:
        if batch.failure.user_error:
            raise UserError(batch.failure.message)
        raise RuntimeError(batch.failure.message)


def leave_a_core(settings: Settings) -> Settings:
    """The renderer needs a core of its own: by default the model takes all but one."""
    if settings.model.threads:
        return settings
    threads = max(1, (os.cpu_count() or 2) - 1)
    return structs.replace(settings, model=structs.replace(settings.model, threads=threads))


def model_first(settings: Settings) -> FrameSource:
    """The model of `settings` beside a renderer (not started), to enter before anything else
    of a run, the render stack's imports included: its process then imports torch and loads
    while the window opens."""
    return open_source(leave_a_core(settings))
