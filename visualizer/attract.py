"""The kiosk's attract loop: while the model loads or restarts, the last finished answer plays
again, token by token and with its sound, so a visitor never faces an empty screen. `Attract`
keeps the answer as the live ones pass; `ReplayWhileLoading` stands in front of the kiosk's
source and plays it while that source is loading. The replayed frames come marked as a replay
(the window says so).

The answer is also kept as a trace file (kiosk.attract_file), written in the background at most
once an hour, so that the next start of the kiosk (each morning, or after its supervisor
restarted it) has something to play while the model loads.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from visualizer.config import GenerationSettings
from visualizer.errors import UserError
from visualizer.frame import Frame
from visualizer.handoff import Batch
from visualizer.sources import FrameSource, InFront
from visualizer.sources.player import TracePlayer, schedule
from visualizer.trace import frames_from_trace, read_trace, write_trace

RATE = 8.0  # tokens a second in a replay
REST_S = 3.0  # between two replays
SAVE_EVERY_S = 3600.0  # the file is rewritten at most this often (kiosk disks are often SD cards)
MAX_FRAMES = 1024  # an answer longer than this is not kept
LOADING = ("starting", "loading", "reconnecting")  # a source's states that the replay fills


class Attract:
    def __init__(self, path: Path | None, model: str, log: logging.Logger) -> None:
        """`path`: the trace to start from and to keep the answer in (None: none); a trace of
        another `model` is not played."""
        self.path, self.model, self.log = path, model, log
        self.frames: tuple[Frame, ...] = ()  # the answer replayed
        self.prompt = ""
        self._taking: list[Frame] = []  # the answer being shown now
        self._saved_at = -SAVE_EVERY_S
        self._saver: threading.Thread | None = None
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            trace = read_trace(path)
        except UserError as exc:  # damaged, or from another version: start without one
            self.log.warning("attract loop: %s", exc)
            return
        if trace.meta.get("model") == self.model:
            self.frames, self.prompt = tuple(frames_from_trace(trace)), trace.meta.get("prompt", "")

    def take(self, frame: Frame) -> None:
        """Every live frame the kiosk shows: the answer that may be kept."""
        if len(self._taking) < MAX_FRAMES:
            self._taking.append(frame)

    def begin(self) -> None:
        """A new prompt goes to the model."""
        self._taking = []

    def keep(self, prompt: str) -> None:
        """The answer on screen finished: it is the one to replay from now on."""
        if not any(not f.is_prompt for f in self._taking):
            return
        self.frames, self.prompt, self._taking = tuple(self._taking), prompt, []
        now = time.monotonic()
        saving = self._saver is not None and self._saver.is_alive()
        if self.path is not None and not saving and now - self._saved_at >= SAVE_EVERY_S:
            self._saved_at = now
            self._saver = threading.Thread(target=self._save, args=(self.frames, prompt),
                                           name="neuroweb-attract", daemon=True)  # fmt: skip
            self._saver.start()

    def _save(self, frames: tuple[Frame, ...], prompt: str) -> None:
        try:  # atomic: a power cut leaves the old file or the new one
            write_trace(self.path, frames, {"model": self.model, "prompt": prompt})
        except OSError as exc:
            self.log.warning("attract loop: cannot keep the answer in %s: %s", self.path, exc)

    def wait_saved(self, timeout: float) -> None:
        """Until the file being written is complete (for shutdown and tests)."""
        if self._saver is not None:
            self._saver.join(timeout)


class ReplayWhileLoading(InFront):
    """`source` itself, with the answer `attract` keeps played while it loads; the live frames
    pass through `attract` on their way."""

    def __init__(self, source: FrameSource, attract: Attract, now: Callable[[], float]) -> None:
        super().__init__(source)
        self.attract, self.now = attract, now
        self._player: TracePlayer | None = None
        self._state = ""

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
