"""The local model process: a FrameSource whose frames are made by a child process of this one,
and delivered through a Handoff.

Why a process and not only a thread: torch runs each op in C++ but re-takes the GIL between
ops, hundreds of times per token. Measured on the 2-core dev machine, a decode thread beside a
main thread that runs Python half of each 60 Hz frame fell from 14.6 to 6.8 tok/s, and beside a
fully busy one to 0.3 tok/s: the model waited for the GIL, not for the CPU. So the model runs
in a child process with its own interpreter and torch threads; one receiver thread in this
process blocks on the pipe and publishes each Frame into the Handoff. This process never
imports torch for the stream, so a window can be up before the model has loaded.
"""

import fcntl
import multiprocessing as mp
import os
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection

from visualizer import heap
from visualizer.config import GenerationSettings, Settings
from visualizer.detail import Detail, detail_named
from visualizer.errors import UserError
from visualizer.handoff import Batch, Failure, Handoff, Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.model.load import precheck

# Model processes are forked from a server process that has imported the model's modules
# once (5 s of CPU a process, torch and transformers): a kiosk heals, and a window restarts its
# model, that much sooner. Never forked from this process, which may hold GL or torch threads.
_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload(["visualizer.model.generate", "visualizer.model.load"])
PIPE_BYTES = 1 << 20  # the frames' pipe: room for a whole frame (Linux's unprivileged limit)


def _latest(changes) -> Callable[[], Interventions | None]:
    """The newest interventions sent since the last call (None: nothing new)."""

    def latest() -> Interventions | None:
        found = None
        while True:
            try:
                found = changes.get_nowait()
            except queue.Empty:
                return found

    return latest


def _serve(settings: Settings, commands: Connection, out: Connection, cancel, changes) -> None:
    """Model process: load, then run `generate` commands until `quit` or the pipe closes;
    `changes`: interventions switched while an answer runs (from its next token)."""
    heap.steady()  # its frames come and go by the thousand an hour
    try:
        import torch

        from visualizer.model.generate import generate_frames
        from visualizer.model.load import load_model

        torch.set_num_threads(settings.model.threads or os.cpu_count() or 1)
        out.send(("status", Status("loading", "starting the model process", 0.0)))
        lm = load_model(
            settings.model.name,
            trust_pickle=settings.model.trust_pickle,
            progress=lambda f, stage: out.send(("status", Status("loading", stage, f))),
        )
        ready = Status("ready", lm.name, 1.0, 0, lm.name, lm.architecture,
                       config=lm.model.config.to_dict())  # fmt: skip
        out.send(("status", ready))
        while True:
            try:
                command = commands.recv()
            except EOFError:
                return
            if command[0] == "quit":
                return
            if command[0] == "fault":  # `neuroweb soak --inject-faults`: a bug, on purpose
                raise RuntimeError("an injected fault")
            _, request, prompt, gen, detail, interventions, ghost = command
            latest = _latest(changes)
            latest()  # what was switched before this answer: its own interventions say
            cancel.clear()
            generating = replace(ready, state="generating", request=request, prompt=prompt,
                                 message="")  # fmt: skip
            out.send(("status", generating))

            def note(text: str, generating: Status = generating) -> None:
                out.send(("status", replace(generating, message=text)))

            try:
                frames = generate_frames(lm, prompt, gen, settings.capture, cancel, note, detail,
                                         interventions, ghost, latest)  # fmt: skip
                for frame in frames:
                    out.send(("frame", frame))
            except UserError as exc:  # a bad prompt: report it, stay ready for the next one
                out.send(("failure", Failure(str(exc), True)))
            state = "stopped" if cancel.is_set() else "finished"
            out.send(("status", replace(generating, state=state)))
    except UserError as exc:
        out.send(("failure", Failure(str(exc), True)))
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        pass  # the parent went away or is shutting down
    except BaseException as exc:
        detail = traceback.format_exception_only(exc)[-1].strip()
        out.send(("failure", Failure(f"the model process failed: {detail}", False)))


class LocalSource:
    """The model in a child process. `with LocalSource(settings) as source:`, then
    `source.drain()`; `lossless`: publishing waits for room instead of dropping the oldest
    frames (a trace keeps every frame)."""

    def __init__(self, settings: Settings, lossless: bool = False, capacity: int = 256) -> None:
        """UserError, at once, for a --model that cannot be loaded (load.precheck)."""
        precheck(settings.model.name, settings.model.trust_pickle)
        self.settings, self.lossless, self.capacity = settings, lossless, capacity
        self.name = "the model process"
        self._open()

    def _open(self) -> None:
        settings = self.settings
        self.handoff = Handoff(self.capacity, lossless=self.lossless)
        self._cancel = _CTX.Event()
        self._changes = _CTX.Queue()
        self._changes.cancel_join_thread()  # never wait on it at exit
        cmd_read, self._commands = _CTX.Pipe(duplex=False)
        self._frames, out_write = _CTX.Pipe(duplex=False)
        _make_room(out_write)
        self._process = _CTX.Process(
            target=_serve,
            args=(settings, cmd_read, out_write, self._cancel, self._changes),
            name="neuroweb-model",
            daemon=True,
        )
        self._ends = (cmd_read, out_write)  # the child's ends, closed here once it has them
        self._stopping = threading.Event()
        self._receiver = threading.Thread(
            target=_receive,
            args=(self._frames, self.handoff, self._process, self._stopping),
            name="neuroweb-stream",
        )
        self._requests = 0

    def start(self) -> "LocalSource":
        self._process.start()
        for end in self._ends:
            end.close()
        self._receiver.start()
        return self

    def drain(self, timeout: float = 0.0) -> Batch:
        return self.handoff.drain(timeout)

    def restart(self, why: str = "") -> None:
        """A fresh model process in place of this one, at once (the old one is killed and
        left to be reaped): its frames and statuses start over."""
        self.abandon()
        self._open()
        self.start()

    def generate(
        self, prompt: str, gen: GenerationSettings | None = None, detail: Detail | None = None,
        interventions: Interventions | None = None,
    ) -> int:
        """Start a new answer (one in progress is cancelled first); returns its request number,
        which the statuses about this answer carry. `detail`: what each frame carries (the
        model.detail setting's, full by default); `interventions`: what it changes from its
        first token (the preset's [intervene] by default)."""
        self._cancel.set()
        self._requests += 1
        gen = gen or self.settings.generation
        detail = detail or detail_named(self.settings.model.detail or "full")
        iv = self.settings.intervene
        if interventions is None:
            interventions = interventions_from(iv.ablate, iv.steer)
        self._commands.send(("generate", self._requests, prompt, gen, detail, interventions,
                             iv.ghost))  # fmt: skip
        return self._requests

    def intervene(self, interventions: Interventions) -> None:
        """Change what the answer in progress changes, from its next token."""
        self._changes.put(interventions)

    def inject_fault(self) -> None:
        """Make the model process fail as a bug would (for the soak test's self-healing)."""
        self._commands.send(("fault",))

    def cancel(self) -> None:
        """Stop the answer in progress after the current forward pass; stay loaded."""
        self._cancel.set()

    def stop(self, timeout: float = 1.0) -> None:
        """End the model process and the receiver within `timeout` seconds, from any state."""
        self._stopping.set()
        self._cancel.set()
        try:
            self._commands.send(("quit",))
        except (BrokenPipeError, OSError):
            pass
        self._commands.close()
        self._process.join(timeout * 0.5)
        if self._process.is_alive():  # busy loading or inside a long forward pass
            self._process.kill()
            self._process.join(timeout * 0.4)
        self.handoff.close()
        if self._receiver.is_alive():
            self._receiver.join(timeout * 0.1)
        self.handoff.set_status(Status("stopped"))

    def abandon(self) -> None:
        """End a failed or stuck model process at once, without waiting for it: a kiosk
        replacing it keeps drawing. The receiver ends at the pipe's EOF by itself, and the
        next process started reaps this one."""
        self._stopping.set()
        self._cancel.set()
        self._commands.close()
        self._process.kill()
        self.handoff.close()
        self.handoff.set_status(Status("stopped"))

    def __enter__(self) -> "LocalSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid


def _make_room(end: Connection) -> None:
    """Give the frames' pipe PIPE_BYTES, where the system lets it (Linux; 64 KB otherwise).
    Why: the receiver thread needs the GIL after each read, and a render loop holds the GIL
    but for a switch interval (5 ms) at a time. A full frame of SmolLM2 (391 KB) went through
    the default pipe in 64 KB reads, and the model waited in `send` for each: while a 720p
    window rendered it kept 0.72-0.84 of its rate beside an idle consumer; with room for the
    frame, 0.95-1.07."""
    try:
        fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):  # not Linux, or over the user's pipe-buffer quota
        pass


def _receive(frames: Connection, handoff: Handoff, process, stopping: threading.Event) -> None:
    """Receiver thread: blocks on the pipe, publishes what arrives, ends at EOF. It holds its
    own process's pipe and handoff: a restart gives the source new ones."""
    try:
        while True:
            kind, payload = frames.recv()
            if kind == "frame":
                handoff.publish(payload)
            elif kind == "status":
                handoff.set_status(payload)
            else:
                handoff.fail(payload)
    except (EOFError, OSError):
        pass
    finally:
        frames.close()
    process.join(0.5)
    code = process.exitcode
    if code not in (0, None) and not stopping.is_set():
        handoff.fail(Failure(f"the model process died (exit code {code})", False))
