"""The network thread of `neuroweb serve`, and the Server it runs: it owns the ROUTER socket,
checks every message (wire.unpack, size and schema), answers hellos and pings with statuses,
refuses what is malformed, hostile or not authorised with an error reply, says "busy" to a
second client while an answer runs, and forwards what the model thread made. Viewers (a hello
with `watch`) are sent every answer's frames as its asker is, those of the answer running
from its start when they join (the backlog, at most BACKLOG_BYTES, let go when the answer
ends), and ask for nothing. It
starts the model thread and ends it."""

import hmac
import logging
import threading
import time
import traceback
import uuid
from dataclasses import replace

import zmq
from msgspec import structs

from visualizer import heap, wire
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.handoff import Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.network import ServerKeys
from visualizer.server.curve import guard
from visualizer.server.model_thread import FRAME, ModelThread
from visualizer.server.sessions import Job, Session

BACKLOG_BYTES = 64 << 20  # the answer running, kept for viewers that join: its newest frames
SESSION_S = 30.0  # a client not heard from for this long is forgotten (its answer cancelled)
TICK_S = 0.05
log = logging.getLogger("neuroweb.serve")
HEAP_LINE = "heap: %.2f MB in use, %.2f MB free"  # soak.py reads it back


class Server:
    """The sockets and sessions of `neuroweb serve`: run() serves until stop(), on the thread
    that calls it (the network thread); `model` is the model thread, which it starts and ends."""

    def __init__(self, settings: Settings, host: str, port: int, token: str | None,
                 device_map: str | None, dtype: str, keys: ServerKeys | None = None
                 ) -> None:  # fmt: skip
        self.settings, self.token = settings, token
        iv = settings.intervene
        self.own = interventions_from(iv.ablate, iv.steer)  # applied to every answer
        self.id = uuid.uuid4().hex[:12]  # a restarted server is a new one to its clients
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CLIENT_MESSAGE)  # bigger: disconnected
        self.router.setsockopt(zmq.SNDHWM, 512)  # a slow live client loses frames, not memory
        # encrypted; only the clients whose public keys it holds
        self.authenticator = guard(self.ctx, self.router, keys) if keys is not None else None
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
        self.sessions: dict[bytes, Session] = {}
        self.status = Status("starting", "starting the model")  # as the clients last saw it
        self.status_of: bytes | None = None  # the client whose answer self.status is about
        self.job: Job | None = None  # the answer running (or asked for)
        self.backlog: list[list[bytes]] = []  # its frames so far, for viewers that join
        self.backlog_bytes = 0
        self.stopping = threading.Event()
        self._heap_due = time.monotonic()  # the next [serve] heap_log_s line
        self.refused = 0  # messages refused (malformed, hostile, unauthorised)
        # what each message (after hello) does: one entry per type
        self._handlers = {wire.Ping: self._ping, wire.Credit: self._credit,
                          wire.Cancel: self._cancel, wire.Bye: self._cancel,
                          wire.Generate: self._generate,
                          wire.Intervene: self._intervene}  # fmt: skip
        self.model = ModelThread(settings, device_map, dtype, self.ctx, f"inproc://made-{self.id}",
                                 self.sessions, self.stopping, self.address)  # fmt: skip

    def run(self) -> None:
        """Serve until stop(); then end the model thread and close the sockets."""
        self.model.start()
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
                self._log_heap()
        finally:
            self.stopping.set()
            if self.job is not None:
                self.job.cancel.set()
            self.model.jobs.put(None)
            with self.model.credit:
                self.model.credit.notify_all()
            self.model.join(10.0)
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
        return 0 if self.model.gone is None else 1

    def _send(self, client: bytes, message: wire._Message,
              buffers: list[bytes] | None = None) -> None:  # fmt: skip
        self.router.send_multipart([client, *wire.pack(message, buffers)])

    def _refuse(self, client: bytes, error: wire.WireError) -> None:
        self.refused += 1
        self._send(client, wire.ErrorMessage(code=error.code, message=str(error)[: wire.MAX_TEXT]))

    def _status_for(self, client: bytes) -> wire.StatusMessage:
        session = self.sessions[client]
        status = self.status
        if self.status_of != client and not session.watching:
            # another client's answer (or its last one), or none: this one sees the model
            # ready (or loading), and its own request number
            state = status.state if status.state in ("starting", "loading") else "ready"
            status = replace(status, state=state, request=session.request, prompt="")
        body = wire.status_to(status, not session.described)
        message = wire.StatusMessage(server=self.id, status=body)
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
            if session.watching and isinstance(message, (wire.Generate, wire.Intervene,
                                                         wire.Cancel)):  # fmt: skip
                raise wire.WireError("viewer", "a viewer watches: it asks for no answers and "
                                     "changes none")  # fmt: skip
            self._handlers[type(message)](client, session, message)
        except wire.WireError as error:
            self._refuse(client, error)
        except Exception as exc:  # noqa: BLE001 - a bug in handling one message: said, not fatal
            line = traceback.format_exception_only(exc)[-1].strip()
            self._refuse(client, wire.WireError("internal", f"the server failed: {line}"))

    def _hello(self, client: bytes, hello: wire.Hello) -> None:
        lossless = hello.lossless and not hello.watch  # a viewer never holds the model back
        credit = hello.credit if lossless else 0
        self.sessions[client] = Session(hello.detail, lossless, time.monotonic(), credit,
                                        watching=hello.watch)  # fmt: skip
        self._send(client, self._status_for(client))
        if hello.watch:  # the answer running, from its start
            for message in self.backlog:
                self.router.send_multipart([client, *message], copy=False)

    def _ping(self, client: bytes, session: Session, ping: wire.Ping) -> None:
        self._send(client, self._status_for(client))

    def _credit(self, client: bytes, session: Session, credit: wire.Credit) -> None:
        with self.model.credit:
            session.credit = min(session.credit + credit.n, 1 << 20)
            self.model.credit.notify_all()

    def _cancel(self, client: bytes, session: Session, message) -> None:
        if self.job is not None and self.job.client == client:
            self.job.cancel.set()
        if isinstance(message, wire.Bye):
            del self.sessions[client]

    def _intervene(self, client: bytes, session: Session, message: wire.Intervene) -> None:
        wanted, _ = wire.interventions_of(message.interventions)
        if self.job is not None and self.job.client == client:
            self.job.changes.put(self._with_own(wanted))

    def _authorise(self, message) -> None:
        if self.token is None:
            return
        if not hmac.compare_digest(message.token.encode("utf-8"), self.token.encode("utf-8")):
            raise wire.WireError("auth", "the token is missing or wrong")

    def _generate(self, client: bytes, session: Session, message: wire.Generate) -> None:
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
        self.job = Job(client, request, message.prompt, gen, detail, self._with_own(wanted),
                        ghost)  # fmt: skip
        self.backlog, self.backlog_bytes = [], 0
        self.model.jobs.put(self.job)

    def _with_own(self, wanted: Interventions) -> Interventions:
        """A client's interventions, and the server's own (`serve --ablate/--steer`) too."""
        own = self.own
        return Interventions(tuple(dict.fromkeys((*own.ablations, *wanted.ablations))),
                             tuple(dict.fromkeys((*own.steering, *wanted.steering))))  # fmt: skip

    def _forward(self, parts: list[bytes]) -> None:
        """What the model thread made: a status (to everyone it concerns) or a message for
        one client."""
        if parts[0] == b"status":  # each session sees it as it concerns that session
            self.status_of, self.status = self.model.statuses.get_nowait()
            for client in list(self.sessions):
                self._send(client, self._status_for(client))
            if self.job is not None and self.job.done.is_set():  # its last status: let go
                self.backlog, self.backlog_bytes = [], 0
        elif parts[0] == FRAME:
            self._fan_out(parts[1], int(parts[2]), parts[3:])
        else:
            client, message = parts[0], parts[1:]
            if client in self.sessions:
                self.router.send_multipart([client, *message])

    def _fan_out(self, client: bytes, request: int, message: list[bytes]) -> None:
        """A frame of `client`'s answer `request`: to it, to every viewer, and into the
        backlog while it is the answer running (the oldest let go past BACKLOG_BYTES)."""
        for to, session in list(self.sessions.items()):
            if to == client or session.watching:
                self.router.send_multipart([to, *message], copy=False)
        job = self.job
        if job is None or (job.client, job.request) != (client, request):
            return
        self.backlog.append(message)
        self.backlog_bytes += sum(len(part) for part in message)
        while self.backlog_bytes > BACKLOG_BYTES and len(self.backlog) > 1:
            self.backlog_bytes -= sum(len(part) for part in self.backlog.pop(0))

    def _log_heap(self) -> None:
        """Every `[serve] heap_log_s`, a line of what the C heap holds (heap.usage_mb): a
        soak tells a growing heap from torch's own allocations by it."""
        every = self.settings.serve.heap_log_s
        if not every or time.monotonic() < self._heap_due:
            return
        self._heap_due += every
        if (usage := heap.usage_mb()) is not None:
            log.info(HEAP_LINE, usage["in_use"], usage["free"])

    def _forget_the_silent(self) -> None:
        now = time.monotonic()
        for client, session in list(self.sessions.items()):
            if now - session.seen > SESSION_S:
                del self.sessions[client]
                if self.job is not None and self.job.client == client:
                    self.job.cancel.set()
