"""`neuroweb serve`: the model as a server, for windows on other machines (a GPU box in another
room, a model bigger than the laptop at the talk). The protocol is wire.py's.

Two threads and one handoff between them:
- the network thread owns the ROUTER socket: it checks every message (wire.unpack, size and
  schema), answers hellos and pings with statuses, refuses what is malformed, hostile or not
  authorised with an error reply, says "busy" to a second client while an answer runs, and
  forwards what the model thread made;
- the model thread loads the model (transformers and accelerate: `--device-map auto` spreads it
  over this host's GPUs, or keeps it on the CPU), then runs one answer at a time through the
  same capture as a local model process, reducing each frame to its client's detail on the
  model's device before encoding it; what it makes goes to the network thread through an
  inproc ZeroMQ pair (sockets are never shared between threads).

Security: it binds to loopback by default; any other address needs CURVE keys (--keys DIR,
network.py): the traffic is encrypted and only clients whose public keys are in DIR/clients
are let in (zmq.auth's authenticator checks them in the handshake). A shared token
(--token-file) may be asked for as well, compared in constant time on every message.
"""

import hmac
import logging
import queue
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace

import zmq
from msgspec import structs
from zmq.auth.thread import ThreadAuthenticator

from visualizer import wire
from visualizer.config import Settings
from visualizer.detail import Detail
from visualizer.errors import UserError
from visualizer.handoff import Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.network import (
    ServerKeys,
    is_loopback,
    parse_address,
    read_token,
    secure_server,
    server_keys,
)

log = logging.getLogger("neuroweb.serve")
SESSION_S = 30.0  # a client not heard from for this long is forgotten (its answer cancelled)
CREDIT_WAIT_S = 20.0  # a lossless client that grants no room for this long has gone
TICK_S = 0.05


@dataclass
class _Session:
    detail: Detail
    lossless: bool
    seen: float
    credit: int = 0
    described: bool = False  # the architecture has been sent
    seq: int = 0
    request: int = 0  # its last request number


@dataclass
class _Job:
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


class ModelGone(Exception):
    """The model failed a request and then a one-token probe too: nothing can be served."""


class Server:
    def __init__(self, settings: Settings, host: str, port: int, token: str | None,
                 device_map: str | None, dtype: str, keys: ServerKeys | None = None
                 ) -> None:  # fmt: skip
        self.settings, self.token = settings, token
        iv = settings.intervene
        self.own = interventions_from(iv.ablate, iv.steer)  # applied to every answer
        self.device_map, self.dtype = device_map, dtype
        self.id = uuid.uuid4().hex[:12]  # a restarted server is a new one to its clients
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CLIENT_MESSAGE)  # bigger: disconnected
        self.router.setsockopt(zmq.SNDHWM, 512)  # a slow live client loses frames, not memory
        self.authenticator = None
        if keys is not None:  # encrypted; only the clients whose public keys it holds
            self.authenticator = ThreadAuthenticator(self.ctx, log=log)
            self.authenticator.start()
            self.authenticator.configure_curve(domain="*", location=str(keys.clients))
            secure_server(self.router, keys)
        try:
            self.router.bind(f"tcp://{host}:{port}")
        except zmq.ZMQError as exc:
            self.router.close()
            if self.authenticator is not None:
                self.authenticator.stop()
            self.ctx.term()
            raise UserError(f"--listen {host}:{port}: cannot listen there: {exc}") from None
        self.address = f"{host}:{port}"
        self.made = self.ctx.socket(zmq.PULL)  # what the model thread sends out
        self.made.bind(f"inproc://made-{self.id}")
        self.sessions: dict[bytes, _Session] = {}
        self.status = Status("starting", "starting the model")  # as the clients last saw it
        self.status_of: bytes | None = None  # the client whose answer self.status is about
        # the model thread's statuses, in order, each with the client it is about (or None)
        self._statuses: queue.Queue[tuple[bytes | None, Status]] = queue.Queue()
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.job: _Job | None = None  # the answer running (or asked for)
        self.credit = threading.Condition()
        self.stopping = threading.Event()
        self.refused = 0  # messages refused (malformed, hostile, unauthorised)
        self.answers = 0
        self.failed = 0  # requests that failed (each said to its client)
        self.gone: str | None = None  # why the model thread ended, if it did by failing
        self.lm = None
        # what each message (after hello) does: one entry per type
        self._handlers = {wire.Ping: self._ping, wire.Credit: self._credit,
                          wire.Cancel: self._cancel, wire.Bye: self._cancel,
                          wire.Generate: self._generate, wire.Intervene: self._intervene}
        self._model = threading.Thread(target=self._model_thread, name="neuroweb-serve-model")

    # --- the network thread --------------------------------------------------------------

    def run(self) -> None:
        """Serve until stop(); then end the model thread and close the sockets."""
        self._model.start()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.made, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                for sock, _ in poller.poll(TICK_S * 1000):
                    if sock is self.router:
                        self._receive(self.router.recv_multipart(copy=True))
                    else:
                        self._forward(self.made.recv_multipart(copy=True))
                self._forget_the_silent()
        finally:
            self.stopping.set()
            if self.job is not None:
                self.job.cancel.set()
            self.jobs.put(None)
            with self.credit:
                self.credit.notify_all()
            self._model.join(10.0)
            while self.made.poll(0):  # its last words (a dying model's failure) still go out
                self._forward(self.made.recv_multipart(copy=True))
            self.made.close()
            self.router.setsockopt(zmq.LINGER, 500)  # time for them to leave
            self.router.close()
            if self.authenticator is not None:
                self.authenticator.stop()
            self.ctx.term()

    def stop(self) -> None:
        self.stopping.set()

    @property
    def exit_status(self) -> int:
        """0 after a stop asked for; 1 when the model could not go on (a supervisor with
        Restart=on-failure starts it again)."""
        return 0 if self.gone is None else 1

    def _send(self, client: bytes, message: wire._Message,
              buffers: list[bytes] | None = None) -> None:  # fmt: skip
        self.router.send_multipart([client, *wire.pack(message, buffers)])

    def _refuse(self, client: bytes, error: wire.WireError) -> None:
        self.refused += 1
        self._send(client, wire.ErrorMessage(code=error.code, message=str(error)[:wire.MAX_TEXT]))

    def _status_for(self, client: bytes) -> wire.StatusMessage:
        session = self.sessions[client]
        status = self.status
        if self.status_of != client:
            # another client's answer (or its last one), or none: this one sees the model
            # ready (or loading), and its own request number
            state = status.state if status.state in ("starting", "loading") else "ready"
            status = replace(status, state=state, request=session.request, prompt="")
        message = wire.StatusMessage(server=self.id,
                                     status=wire.status_to(status, not session.described))
        session.described = session.described or status.architecture is not None
        return message

    def _receive(self, parts: list[bytes]) -> None:
        client, parts = parts[0], parts[1:]
        try:
            message, _ = wire.unpack(parts, wire.MAX_CLIENT_MESSAGE)
            self._authorise(message)
            if isinstance(message, wire.Hello):
                self._hello(client, message)
                return
            session = self.sessions.get(client)
            if session is None:
                raise wire.WireError("schema", f"{type(message).__name__.lower()} before hello")
            session.seen = time.monotonic()
            self._handlers[type(message)](client, session, message)
        except wire.WireError as error:
            self._refuse(client, error)
        except Exception as exc:  # noqa: BLE001 - a bug in handling one message: said, not fatal
            line = traceback.format_exception_only(exc)[-1].strip()
            self._refuse(client, wire.WireError("internal", f"the server failed: {line}"))

    def _hello(self, client: bytes, hello: wire.Hello) -> None:
        credit = hello.credit if hello.lossless else 0
        self.sessions[client] = _Session(hello.detail, hello.lossless, time.monotonic(), credit)
        self._send(client, self._status_for(client))

    def _ping(self, client: bytes, session: _Session, ping: wire.Ping) -> None:
        self._send(client, self._status_for(client))

    def _credit(self, client: bytes, session: _Session, credit: wire.Credit) -> None:
        with self.credit:
            session.credit = min(session.credit + credit.n, 1 << 20)
            self.credit.notify_all()

    def _cancel(self, client: bytes, session: _Session, message) -> None:
        if self.job is not None and self.job.client == client:
            self.job.cancel.set()
        if isinstance(message, wire.Bye):
            del self.sessions[client]

    def _intervene(self, client: bytes, session: _Session, message: wire.Intervene) -> None:
        wanted, _ = wire.interventions_of(message.interventions)
        if self.job is not None and self.job.client == client:
            self.job.changes.put(self._with_own(wanted))

    def _authorise(self, message) -> None:
        if self.token is None:
            return
        if not hmac.compare_digest(message.token.encode("utf-8"), self.token.encode("utf-8")):
            raise wire.WireError("auth", "the token is missing or wrong")

    def _generate(self, client: bytes, session: _Session, message: wire.Generate) -> None:
        request = message.request
        limits = self.settings.serve
        gen = message.gen
        if gen.max_tokens > limits.max_tokens:  # a fair share: the server's cap, said once
            gen = structs.replace(gen, max_tokens=limits.max_tokens)
        detail = message.detail or session.detail
        wanted, ghost = (wire.interventions_of(message.interventions)
                         if message.interventions is not None
                         else (Interventions(), self.settings.intervene.ghost))  # fmt: skip
        job = self.job
        running = job is not None and not job.cancel.is_set() and not job.done.is_set()
        if running and self.job.client != client:
            session.request = request  # dealt with (refused): its client is not left waiting
            self._send(client, wire.Busy(message="the server is answering another client",
                                         request=request))  # fmt: skip
            return
        if self.job is not None:
            self.job.cancel.set()  # this client's own earlier answer gives way
        session.request = request
        self.job = _Job(client, request, message.prompt, gen, detail, self._with_own(wanted),
                        ghost)  # fmt: skip
        self.jobs.put(self.job)

    def _with_own(self, wanted: Interventions) -> Interventions:
        """A client's interventions, and the server's own (`serve --ablate/--steer`) too."""
        own = self.own
        return Interventions(tuple(dict.fromkeys((*own.ablations, *wanted.ablations))),
                             tuple(dict.fromkeys((*own.steering, *wanted.steering))))  # fmt: skip

    def _forward(self, parts: list[bytes]) -> None:
        """What the model thread made: a status (to everyone it concerns) or a message for
        one client."""
        if parts[0] == b"status":  # each session sees it as it concerns that session
            self.status_of, self.status = self._statuses.get_nowait()
            for client in list(self.sessions):
                self._send(client, self._status_for(client))
        else:
            client, message = parts[0], parts[1:]
            if client in self.sessions:
                self.router.send_multipart([client, *message])

    def _forget_the_silent(self) -> None:
        now = time.monotonic()
        for client, session in list(self.sessions.items()):
            if now - session.seen > SESSION_S:
                del self.sessions[client]
                if self.job is not None and self.job.client == client:
                    self.job.cancel.set()

    # --- the model thread ----------------------------------------------------------------

    def _model_thread(self) -> None:
        out = self.ctx.socket(zmq.PUSH)
        out.connect(f"inproc://made-{self.id}")
        try:
            self._serve_model(out)
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
        self._statuses.put((client, status))
        out.send_multipart([b"status"])

    def _serve_model(self, out: zmq.Socket) -> None:
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
        print(f"neuroweb: serving {lm.name} on {self.address}", file=sys.stderr, flush=True)
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
                    out.send_multipart([job.client, *message], copy=False)
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

    def _fail(self, out: zmq.Socket, job: _Job, message: str, user_error: bool) -> None:
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

    def _room(self, job: _Job) -> bool:
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


def serve_command(settings: Settings, listen: str, device_map: str | None, dtype: str,
                  token_file: str | None, keys_dir: str | None = None) -> int:  # fmt: skip
    """Serve until Ctrl-C or SIGTERM (exit 0 then; 1 if the model could not go on)."""
    host, port = parse_address(listen, "--listen")
    token = read_token(token_file) if token_file else None
    if not is_loopback(host) and not keys_dir:
        raise UserError(f"serve: --listen {listen} is reachable from other machines: give "
                        "--keys DIR (CURVE keys: encrypted, only known clients) or listen on "
                        "127.0.0.1")  # fmt: skip
    keys = server_keys(keys_dir) if keys_dir else None
    server = Server(settings, host, port, token, device_map, dtype, keys)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    if keys is not None:
        print(f"neuroweb: CURVE on; public key {keys.public.decode()}; clients need "
              f"{keys_dir}/server.key and a client.key_secret whose public key is in "
              f"{keys.clients}", file=sys.stderr, flush=True)  # fmt: skip
    print(f"neuroweb: listening on {server.address} (loading the model)", file=sys.stderr,
          flush=True)  # fmt: skip
    try:
        server.run()
    except KeyboardInterrupt:
        server.stop()
    print(f"neuroweb: served {server.answers} answers, {server.failed} failed; refused "
          f"{server.refused} messages", file=sys.stderr)  # fmt: skip
    if server.gone is not None:
        print(f"neuroweb: serve: {server.gone}", file=sys.stderr)
    return server.exit_status
