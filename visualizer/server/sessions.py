"""What the two threads of `neuroweb serve` hand each other: a client's session (kept by the
network thread; its frame count and credit taken by the model thread) and a job, one answer
asked for."""

import queue
import threading
from dataclasses import dataclass, field

from visualizer.detail import Detail
from visualizer.interventions import Interventions


@dataclass
class Session:
    detail: Detail
    lossless: bool
    seen: float
    credit: int = 0
    described: bool = False  # the architecture has been sent
    seq: int = 0
    request: int = 0  # its last request number
    watching: bool = False  # a viewer: sent every answer (from its start), asks for none


@dataclass
class Job:
    client: bytes
    request: int
    prompt: str
    gen: object
    detail: Detail
    interventions: Interventions
    ghost: bool
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)  # the model is through it
    changes: queue.Queue = field(default_factory=queue.Queue)  # switched mid-answer

    def latest(self) -> Interventions | None:
        found = None
        while not self.changes.empty():
            found = self.changes.get_nowait()
        return found
