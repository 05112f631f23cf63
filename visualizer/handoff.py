"""The one thread-safe handoff between the model stream and its consumer (renderer, terminal).

publish() never blocks: frames go into a bounded ring and, when the consumer falls behind, the
oldest are dropped and counted (a lossless handoff, for a trace that must keep every frame,
makes the producer wait for room instead). drain() never waits on the producer beyond its own
timeout. The lock is held only to move references, never while computing.
"""

import threading
from collections import deque
from dataclasses import dataclass

from visualizer.architecture import Architecture
from visualizer.frame import Frame


@dataclass(frozen=True)
class Status:
    """What the model side is doing, as a latest-value slot (older states are not queued)."""

    state: str  # "starting" | "loading" | "ready" | "generating" | "finished" | "stopped"
    #             | "reconnecting" (a remote source lost its server and is looking for it)
    message: str = ""
    progress: float = 0.0  # load progress, 0..1
    request: int = 0  # which generate() call the state belongs to (0 = none yet)
    model: str = ""  # the loaded model's name, once it is loaded
    architecture: Architecture | None = None  # what it is made of, once it is loaded
    prompt: str = ""  # the prompt of the answer being generated (or last generated)
    config: dict | None = None  # the loaded model's config (config.to_dict()), for traces


@dataclass(frozen=True)
class Failure:
    """The model side died; `user_error` marks bad input (CLI exit status 2) vs a bug."""

    message: str
    user_error: bool


@dataclass(frozen=True)
class Batch:
    frames: tuple[Frame, ...]  # oldest first
    dropped: int  # frames lost since the previous drain because the consumer was slow
    status: Status
    failure: Failure | None  # delivered once, by the first drain after it happened
    replay: bool = False  # the frames are an earlier answer played again, not live
    recorded: bool = False  # the frames come from a recorded run (a trace), not a model


class Handoff:
    def __init__(self, capacity: int = 256, lossless: bool = False) -> None:
        self._frames: deque[Frame] = deque(maxlen=capacity)
        self._lossless = lossless
        self._dropped = 0
        self._status = Status("starting")
        self._failure: Failure | None = None
        self._news = False
        self._cond = threading.Condition(threading.Lock())

    def publish(self, frame: Frame) -> None:
        with self._cond:
            while self._lossless and len(self._frames) == self._frames.maxlen:
                self._cond.wait()  # drain() makes room and wakes it
            if len(self._frames) == self._frames.maxlen:
                self._dropped += 1
            self._frames.append(frame)
            self._news = True
            self._cond.notify_all()

    def count_dropped(self, n: int) -> None:
        """Frames lost before they reached here (a remote source's sequence gaps)."""
        with self._cond:
            self._dropped += n
            self._news = True

    def close(self) -> None:
        """The consumer is gone: a lossless producer waiting for room drops frames instead."""
        with self._cond:
            self._lossless = False
            self._cond.notify_all()

    def set_status(self, status: Status) -> None:
        with self._cond:
            self._status = status
            self._news = True
            self._cond.notify_all()

    def fail(self, failure: Failure) -> None:
        with self._cond:
            self._failure = failure
            self._news = True
            self._cond.notify_all()

    def drain(self, timeout: float = 0.0) -> Batch:
        """Take every waiting frame; if nothing is new, wait up to `timeout` seconds first."""
        with self._cond:
            if not self._news and timeout > 0:
                self._cond.wait(timeout)
            frames = tuple(self._frames)
            self._frames.clear()
            self._cond.notify_all()  # a lossless producer waiting for room
            dropped, self._dropped, self._news = self._dropped, 0, False
            failure, self._failure = self._failure, None
            return Batch(frames, dropped, self._status, failure)
