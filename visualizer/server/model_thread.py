"""The model thread of `neuroweb serve`: it loads the model (transformers and accelerate:
`--device-map auto` spreads it over this host's GPUs, or keeps it on the CPU), then runs one
answer at a time through the same capture as a local model process, reducing each frame to its
client's detail on the model's device before encoding it. What it makes goes to the network
thread through an inproc ZeroMQ pair (sockets are never shared between threads)."""

import logging
import queue
import threading
import time
import traceback
from dataclasses import replace

import zmq

from visualizer import wire
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.handoff import Status
from visualizer.server.sessions import Job, Session

log = logging.getLogger("neuroweb.serve")
FRAME = b"frame"  # the mark of a frame among what the model thread sends the network thread
CREDIT_WAIT_S = 20.0  # a lossless client that grants no room for this long has gone


class ModelGone(Exception):
    """The model failed a request and then a one-token probe too: nothing can be served."""


class ModelThread:
    """Runs the jobs put in `jobs` (None ends it) and sends what they make to `made` (an
    inproc address the network thread has bound). `sessions` and `stopping` are the network
    thread's; `credit` guards the sessions' credit, which the network thread grants."""

    def __init__(self, settings: Settings, device_map: str | None, dtype: str, ctx: zmq.Context,
                 made: str, sessions: dict[bytes, Session], stopping: threading.Event,
                 address: str) -> None:  # fmt: skip
        self.settings, self.device_map, self.dtype = settings, device_map, dtype
        self.ctx, self.made, self.address = ctx, made, address
        self.sessions, self.stopping = sessions, stopping
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        # its statuses, in order, each with the client it is about (or None)
        self.statuses: queue.Queue[tuple[bytes | None, Status]] = queue.Queue()
        self.credit = threading.Condition()
        self.answers = 0
        self.failed = 0  # requests that failed (each said to its client)
        self.gone: str | None = None  # why the model thread ended, if it did by failing
        self.lm = None
        self._thread = threading.Thread(target=self._run, name="neuroweb-serve-model")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        out = self.ctx.socket(zmq.PUSH)
        out.connect(self.made)
        try:
            self._serve(out)
        except BaseException as exc:  # noqa: BLE001 - said, and the server ends, not with 0
            detail = traceback.format_exception_only(exc)[-1].strip()
            if isinstance(exc, ModelGone):
                detail = f"the model cannot go on: {exc}"
            self.gone = detail
            self.stopping.set()
        finally:
            out.close()

    def _set_status(self, out: zmq.Socket, status: Status, client: bytes | None = None) -> None:
        """In order with the frames and failures: the network thread takes it up when it
        reaches the marker, so no client sees a later status before an earlier message.
        `client` is whose answer it is about: a later request of another client must not see
        it as its own (both may be request 1)."""
        self.statuses.put((client, status))
        out.send_multipart([b"status"])

    def _serve(self, out: zmq.Socket) -> None:
        import torch

        from visualizer.model.generate import generate_frames
        from visualizer.model.load import load_model

        if self.settings.model.threads:
            torch.set_num_threads(self.settings.model.threads)

        def progress(fraction: float, stage: str) -> None:
            self._set_status(out, Status("loading", stage, fraction))

        lm = load_model(self.settings.model.name, trust_pickle=self.settings.model.trust_pickle,
                        progress=progress, stop=self.stopping, device_map=self.device_map,
                        dtype=self.dtype)  # fmt: skip
        self.lm = lm  # the model this server shares (its thread's; read by tests' faults)
        ready = Status("ready", lm.name, 1.0, 0, lm.name, lm.architecture,
                       config=lm.model.config.to_dict())  # fmt: skip
        self._set_status(out, ready)
        log.info("serving %s on %s", lm.name, self.address)
        while not self.stopping.is_set():
            job = self.jobs.get()
            if job is None:
                return
            if job.cancel.is_set():
                continue
            generating = replace(ready, state="generating", request=job.request,
                                 prompt=job.prompt, message="")  # fmt: skip
            self._set_status(out, generating, job.client)
            state, why = "finished", ""
            try:
                frames = generate_frames(lm, job.prompt, job.gen, self.settings.capture,
                                         job.cancel, detail=job.detail,
                                         interventions=job.interventions, ghost=job.ghost,
                                         changes=job.latest)  # fmt: skip
                deadline_s = self.settings.serve.max_answer_s
                deadline = time.monotonic() + deadline_s
                for frame in frames:
                    if time.monotonic() > deadline:  # a fair share of the model's time
                        why = f"stopped at the server's limit of {deadline_s:g} s an answer"
                        job.cancel.set()
                        break
                    if not self._room(job):
                        job.cancel.set()
                        break
                    session = self.sessions.get(job.client)
                    if session is None:
                        job.cancel.set()
                        break
                    session.seq += 1
                    message = wire.frame_to(frame, session.seq, job.request, job.detail)
                    # marked as a frame of this answer: the network thread sends it to the
                    # viewers too, and keeps it for the ones that join later
                    out.send_multipart([FRAME, job.client, b"%d" % job.request, *message],
                                       copy=False)  # fmt: skip
            except UserError as exc:  # a bad prompt: said to its client, the server goes on
                self._fail(out, job, str(exc), user_error=True)
            except Exception as exc:  # noqa: BLE001 - one request's failure, not the server's
                line = traceback.format_exception_only(exc)[-1].strip()
                self._fail(out, job, f"the model failed on this request: {line}", False)
                if not self._model_can_go_on(lm):
                    raise ModelGone(line) from exc
            if job.cancel.is_set():
                state = "stopped"
                if self.stopping.is_set() and not why:
                    why = wire.SERVER_STOPPING
            self.answers += 1
            job.done.set()
            self._set_status(out, replace(generating, state=state, message=why), job.client)

    def _fail(self, out: zmq.Socket, job: Job, message: str, user_error: bool) -> None:
        failure = wire.FailureMessage(message=message[: wire.MAX_TEXT], user_error=user_error,
                                      request=job.request)  # fmt: skip
        out.send_multipart([job.client, *wire.pack(failure)])
        self.failed += 1

    def _model_can_go_on(self, lm) -> bool:
        """After a request failed: does one token's forward pass still run? If not (weights
        gone, device lost), the server cannot serve anyone and must end."""
        import torch

        try:
            with torch.no_grad():
                device = lm.model.get_input_embeddings().weight.device
                out = lm.model(torch.zeros((1, 1), dtype=torch.long, device=device))
            return bool(torch.isfinite(out.logits).all())
        except Exception:  # noqa: BLE001 - whatever it raises, the model is gone
            return False

    def _room(self, job: Job) -> bool:
        """A lossless client's frames wait for its credit (the model waits with them); False
        when it has gone quiet or the answer was cancelled."""
        session = self.sessions.get(job.client)
        if session is None or not session.lossless:
            return session is not None
        deadline = time.monotonic() + CREDIT_WAIT_S
        with self.credit:
            while session.credit <= 0:
                if job.cancel.is_set() or self.stopping.is_set() or time.monotonic() > deadline:
                    return False
                self.credit.wait(0.1)
            session.credit -= 1
        return True
