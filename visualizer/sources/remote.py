"""A model served by `neuroweb serve` on another machine, as a FrameSource.

One thread owns the DEALER socket (ZeroMQ sockets are never shared between threads): it says
hello with the token and the detail this client wants, sends the prompts and cancels the App
asks for (through a queue), pings every second, and checks every message before it is used
(wire.py). Frames go into a Handoff: a window that falls behind gets the newest frames and a
count of the dropped ones (gaps in the frames' sequence numbers count too). A trace asks for a
lossless session instead: the server sends only as many frames as this client has room for.

When the server goes quiet (killed, restarted, a cable pulled) for STALL_S, the window says
"reconnecting" and the socket is made anew, with backoff, until the server answers; an answer
that was cut off ends as "stopped". A refused token or another wire version is a failure the
user must fix: said once, no retry.
"""

import queue
import threading
import time
from dataclasses import asdict, replace

import zmq

from visualizer import wire
from visualizer.config import GenerationSettings, Settings
from visualizer.detail import Detail, detail_named
from visualizer.handoff import Batch, Failure, Handoff, Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.network import parse_address, read_token

STALL_S = 4.0  # nothing from the server for this long: it is gone
BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # waits between tries to reconnect, then the last again
POLL_MS = 20
CREDIT = 64  # a lossless client's room, topped up as frames are taken


class RemoteSource:
    def __init__(self, settings: Settings, lossless: bool = False) -> None:
        self.settings, self.lossless = settings, lossless
        host, port = parse_address(settings.model.source, "--source")
        self.address = f"{host}:{port}"
        self.name = f"the server at {self.address}"
        file = settings.model.token_file
        self.token = read_token(file) if file else ""
        self.detail = detail_named(settings.model.detail or "reduced")
        self.handoff = Handoff(lossless=lossless)
        self.handoff.set_status(Status("starting", f"connecting to {self.address}"))
        self._outbox: queue.Queue[tuple] = queue.Queue()
        self._stop = threading.Event()
        self._dead = False  # refused for good (token, version): no retry
        self._requests = 0
        self.cut_off = 0  # the last answer a lost connection cut off (it ends as "stopped")
        self._thread = threading.Thread(target=self._run, name="neuroweb-remote", daemon=True)
        self.reconnects = 0  # sessions opened after the first
        self.connected_at: float | None = None  # monotonic time the current session began

    def start(self) -> "RemoteSource":
        self._thread.start()
        return self

    def __enter__(self) -> "RemoteSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def drain(self, timeout: float = 0.0) -> Batch:
        return self.handoff.drain(timeout)

    def generate(
        self, prompt: str, gen: GenerationSettings | None = None, detail: Detail | None = None,
        interventions: Interventions | None = None,
    ) -> int:
        """`detail`: this answer's (a trace's own), else the connection's (model.detail);
        `interventions`: the preset's by default (the server adds its own)."""
        self._requests += 1
        iv = self.settings.intervene
        if interventions is None:
            interventions = interventions_from(iv.ablate, iv.steer)
        self._outbox.put(("generate", self._requests, prompt, gen or self.settings.generation,
                          detail, wire.interventions_to(interventions, iv.ghost)))  # fmt: skip
        return self._requests

    def intervene(self, interventions: Interventions) -> None:
        ghost = self.settings.intervene.ghost
        self._outbox.put(("intervene", wire.interventions_to(interventions, ghost)))

    def cancel(self) -> None:
        self._outbox.put(("cancel",))

    def restart(self, why: str = "") -> None:
        """Heal: drop the connection and make it anew (a kiosk that saw the server stall)."""
        self._outbox.put(("reconnect",))

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.handoff.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.handoff.set_status(Status("stopped"))

    @property
    def alive(self) -> bool:
        return not self._dead and (self._thread.is_alive() or not self._thread.ident)

    # --- the socket thread ---------------------------------------------------------------

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        tries = 0
        while not self._stop.is_set() and not self._dead:
            lost = self._session(ctx, first=tries == 0)
            if self._stop.is_set() or self._dead:
                break
            wait = BACKOFF_S[min(tries, len(BACKOFF_S) - 1)] if lost != "asked" else 0.0
            tries += 1
            self.handoff.set_status(Status("reconnecting", f"reconnecting to {self.address}"))
            self._stop.wait(wait)

    def _session(self, ctx: zmq.Context, first: bool) -> str:
        """One connection, until it is lost ("quiet"), asked to reconnect ("asked"), or the
        source stops ("stop")."""
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 200)  # time for a last "bye" to go out
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.RCVHWM, 1024)
        sock.connect(f"tcp://{self.address}")
        state = _Session(self, sock)
        try:
            state.hello()
            while not self._stop.is_set() and not self._dead:
                if sock.poll(POLL_MS):
                    state.receive(sock.recv_multipart(copy=True))
                    if state.heard is not None and self.connected_at is None:
                        self.connected_at = time.monotonic()
                        self.reconnects += 0 if first else 1
                if state.commands() == "reconnect":
                    return "asked"
                state.ping()
                if time.monotonic() - (state.heard or state.opened) > STALL_S:
                    return "quiet"
            if state.heard is not None:
                state.send({"type": "bye"})  # the server cancels this client's answer at once
            return "stop"
        finally:
            self.connected_at = None
            state.lost()
            sock.close()


class _Session:
    """One connection's state: the last status and sequence number, what is in flight."""

    def __init__(self, source: RemoteSource, sock: zmq.Socket) -> None:
        self.source, self.sock = source, sock
        self.opened = time.monotonic()
        self.heard: float | None = None
        self.pinged = 0.0
        self.seq = 0
        self.status: Status | None = None
        self.server = ""
        self.asked = 0  # the request in flight (0: none)
        self.taken = 0  # frames taken since credit was last granted

    def send(self, header: dict) -> None:
        token = self.source.token
        self.sock.send_multipart(wire.pack({**header, "token": token}), copy=True)

    def hello(self) -> None:
        self.send({"type": "hello", "detail": wire.detail_to(self.source.detail),
                   "lossless": self.source.lossless, "credit": CREDIT})  # fmt: skip

    def ping(self) -> None:
        now = time.monotonic()
        if now - self.pinged >= wire.PING_S:
            self.pinged = now
            self.send({"type": "ping"})

    def commands(self) -> str:
        while True:
            try:
                command = self.source._outbox.get_nowait()
            except queue.Empty:
                return ""
            if command[0] == "reconnect":
                return "reconnect"
            if command[0] == "cancel":
                self.send({"type": "cancel"})
            elif command[0] == "intervene":
                self.send({"type": "intervene", "interventions": command[1]})
            else:
                _, request, prompt, gen, detail, interventions = command
                self.asked = request
                message = {"type": "generate", "request": request, "prompt": prompt,
                           "gen": asdict(gen), "interventions": interventions}  # fmt: skip
                if detail is not None:  # this answer's own (a trace's), not the session's
                    message["detail"] = wire.detail_to(detail)
                self.send(message)

    def receive(self, parts: list[bytes]) -> None:
        handoff = self.source.handoff
        try:
            header, buffers = wire.unpack(parts, wire.MAX_FRAME_BYTES)
            kind = header["type"]
            if kind == "frame":
                frame = wire.frame_from(header, buffers)
                seq = wire.need(header, "seq", int)
                if seq > self.seq + 1:
                    handoff.count_dropped(seq - self.seq - 1)
                self.seq = max(self.seq, seq)
                if wire.need(header, "request", int) == self.asked:
                    handoff.publish(frame)  # waits for room when lossless
                    self.credit()
            elif kind == "status":
                server = wire.need(header, "server", str, limit=64)
                if self.server and server != self.server:  # a restarted server
                    self.source.cut_off = max(self.source.cut_off, self.asked)
                    self.status = None
                self.server = server
                self.status = wire.status_from(header.get("status"), self.status)
                handoff.set_status(self._as_seen_here(self.status))
            elif kind == "failure":
                message = wire.need(header, "message", str, limit=4096)
                handoff.fail(Failure(message, wire.need(header, "user_error", bool)))
            elif kind == "busy":
                message = wire.need(header, "message", str, limit=4096)
                handoff.fail(Failure(f"{self.source.name}: {message}", True))
                self.asked = 0
            elif kind == "error":
                self._refused(wire.need(header, "code", str, limit=32),
                              wire.need(header, "message", str, limit=4096))  # fmt: skip
            self.heard = time.monotonic()
        except wire.WireError as error:  # a bad message from the server: dropped, and said
            handoff.fail(Failure(f"{self.source.name} sent a bad message: {error}", True))

    def credit(self) -> None:
        if not self.source.lossless:
            return
        self.taken += 1
        if self.taken >= CREDIT // 4:
            self.send({"type": "credit", "n": self.taken})
            self.taken = 0

    def _refused(self, code: str, message: str) -> None:
        if code in ("auth", "version"):
            what = "refused the token (--token-file)" if code == "auth" else message
            self.source._dead = True
            self.source.handoff.fail(Failure(f"{self.source.name} {what}", True))
        elif code == "schema" and "before hello" in message:
            self.hello()  # the server restarted and forgot this session
        else:
            self.source.handoff.fail(Failure(f"{self.source.name} refused: {message}", True))

    def _as_seen_here(self, status: Status) -> Status:
        """A server that never heard of the answer a lost connection cut off says "ready" with
        an older request number: here that answer has ended, stopped."""
        cut_off = self.source.cut_off
        if status.state == "ready" and status.request < cut_off:
            return replace(status, state="stopped", request=cut_off)
        return status

    def _stopped(self) -> Status:
        """The answer in flight, cut off: it ends as stopped."""
        base = self.status or Status("ready")
        return replace(base, state="stopped", request=max(base.request, self.asked))

    def lost(self) -> None:
        if self.asked and self.status is not None and self.status.state == "generating":
            self.source.cut_off = self.asked
            self.source.handoff.set_status(self._stopped())
