"""A model served by `neuroweb serve` on another machine, as a FrameSource.

One thread owns the DEALER socket (ZeroMQ sockets are never shared between threads): it says
hello with the token and the detail this client wants, sends the prompts and cancels the App
asks for (through a queue), pings every second, and checks every message before it is used
(wire/). Frames go into a Handoff: a window that falls behind gets the newest frames and a
count of the dropped ones (gaps in the frames' sequence numbers count too). A trace asks for a
lossless session instead: the server sends only as many frames as this client has room for.

A viewer (`model.watch`, `run --watch`) says so in its hello: the server sends it every
answer, whoever asks it, and the one running from its start; it asks for none (a prompt typed
into it is refused here, on screen).

When the server goes quiet (killed, restarted, a cable pulled) for STALL_S, or anything in this
thread fails, the status says "server lost, reconnecting (n s)" and the socket is made anew,
with backoff (1, 2, 4 … 60 s), until the server answers; an answer that was cut off ends as
"stopped". Each change of state is logged once ("neuroweb.remote"), not per frame. A refused
token or another wire version is a failure the user must fix: said once, no retry.

What this client takes in is bounded in bytes: before the server has described its model, a
message may be MAX_STATUS; after, a frame may be only as large as that model's frames at this
client's detail (wire.frame_limit), and the queue holds QUEUE_BYTES of them.
"""

import logging
import queue
import threading
import time
import traceback
from dataclasses import replace

import zmq
from msgspec import structs

from visualizer import wire
from visualizer.config import GenerationSettings, Settings
from visualizer.detail import LEVELS, Detail, detail_named
from visualizer.handoff import Batch, Failure, Handoff, Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.network import client_keys, parse_address, read_token, secure_client

STALL_S = 1.5  # nothing from the server for this long (it answers a ping every PING_S): gone
BACKOFF_S = (1, 2, 4, 8, 16, 32, 60)  # waits between tries to reconnect, then the last again
POLL_MS = 20
CREDIT = 64  # a lossless client's room, topped up as frames are taken
QUEUE_BYTES = 64 << 20  # what the receive queue may hold, in frames of the model's size
FIRST_LIMITS = (wire.MAX_STATUS, 8)  # message bytes and queue length before the model is known
WATCHING = "this window watches {}: its answers are asked for at the controlling one"
CUT_OFF = "cut off: the connection to the server was lost during this answer"
log = logging.getLogger("neuroweb.remote")


class RemoteSource:
    def __init__(self, settings: Settings, lossless: bool = False) -> None:
        self.settings, self.lossless = settings, lossless
        host, port = parse_address(settings.model.source, "--source")
        self.address = f"{host}:{port}"
        self.name = f"the server at {self.address}"
        file = settings.model.token_file
        self.token = read_token(file) if file else ""
        self.keys = client_keys(settings.model.key_dir) if settings.model.key_dir else None
        self.detail = detail_named(settings.model.detail or "reduced")
        self.watch = settings.model.watch
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
        self.connected = self.ever_connected = False
        self.limits = FIRST_LIMITS  # (message bytes, queue length) of the next socket

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
        if self._watching():
            return self._requests
        self._requests += 1
        iv = self.settings.intervene
        if interventions is None:
            interventions = interventions_from(iv.ablate, iv.steer)
        self._outbox.put(("generate", self._requests, prompt, gen or self.settings.generation,
                          detail, wire.interventions_to(interventions, iv.ghost)))  # fmt: skip
        return self._requests

    def intervene(self, interventions: Interventions) -> None:
        if self._watching():
            return
        ghost = self.settings.intervene.ghost
        self._outbox.put(("intervene", wire.interventions_to(interventions, ghost)))

    def _watching(self) -> bool:
        """A viewer asks for nothing: what is asked of it is said on screen, not sent."""
        if self.watch:
            self.handoff.fail(Failure(WATCHING.format(self.address), True))
        return self.watch

    def cancel(self) -> None:
        self._outbox.put(("cancel",))

    def restart(self, why: str = "") -> None:
        """Heal: drop the connection and make it anew (a kiosk that saw the server stall); a
        source refused for good (token, version) tries once more (the server may have been
        set up anew)."""
        if self._thread.is_alive() or self._stop.is_set():
            self._outbox.put(("reconnect",))
            return
        self._dead = False
        self._thread = threading.Thread(target=self._run, name="neuroweb-remote", daemon=True)
        self._thread.start()

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
        tries, lost_at, why = 0, None, ""
        while not self._stop.is_set() and not self._dead:
            try:
                ended = self._session(ctx, first=tries == 0)
            except Exception as exc:  # noqa: BLE001 - any failure here is a lost server, shown
                ended = "failed: " + traceback.format_exception_only(exc)[-1].strip()
            if self._stop.is_set() or self._dead:
                break
            if ended == "resize":  # the model is known: its own limits, at once
                continue
            if self.connected:
                self.connected, lost_at, tries = False, time.monotonic(), 0
            lost_at = lost_at or time.monotonic()
            if ended != "asked" and ended != why:
                why = ended
                log.warning("%s: %s; reconnecting", self.name, _said(ended))
            wait = BACKOFF_S[min(tries, len(BACKOFF_S) - 1)] if ended != "asked" else 0.0
            tries += 1
            self._wait_showing(lost_at, wait)
        self.connected = False

    def _wait_showing(self, lost_at: float, wait: float) -> None:
        """Wait `wait` s, the status counting the seconds since the server was lost."""
        until = time.monotonic() + wait
        while True:
            n = round(time.monotonic() - lost_at)
            what = "server lost" if self.ever_connected else f"no answer from {self.address}"
            self.handoff.set_status(Status("reconnecting", f"{what}, reconnecting ({n} s)"))
            left = until - time.monotonic()
            if left <= 0 or self._stop.wait(min(1.0, left)):
                return

    def _session(self, ctx: zmq.Context, first: bool) -> str:
        """One connection, until it is lost ("quiet"), asked to reconnect ("asked"), must be
        made with the model's own limits ("resize"), or the source stops ("stop")."""
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 200)  # time for a last "bye" to go out
        size, queue_length = self.limits
        sock.setsockopt(zmq.MAXMSGSIZE, size)  # bigger: the connection is dropped
        sock.setsockopt(zmq.RCVHWM, queue_length)
        monitor = None
        if self.keys is not None:
            secure_client(sock, self.keys)
            monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        sock.connect(f"tcp://{self.address}")
        state = _Session(self, sock)
        try:
            state.hello()
            while not self._stop.is_set() and not self._dead:
                if monitor is not None and monitor.poll(0):
                    monitor.recv_multipart()  # the server's authenticator refused this key
                    self.handoff.fail(Failure(f"{self.name} did not accept this client's key "
                                              f"({self.settings.model.key_dir})", True))
                    self._dead = True
                    break
                if sock.poll(POLL_MS):
                    state.receive(sock.recv_multipart(copy=True))
                    if state.heard is not None and not self.connected:
                        self._connected(first)
                if state.limits is not None and state.limits != self.limits:
                    self.limits, self.connected = state.limits, False
                    state.send(wire.Bye())
                    return "resize"
                if state.limits is not None and state.commands() == "reconnect":
                    return "asked"
                state.ping()
                if time.monotonic() - (state.heard or state.opened) > STALL_S:
                    return "quiet"
            if state.heard is not None:
                state.send(wire.Bye())  # the server cancels this client's answer at once
            return "stop"
        finally:
            self.connected_at = None
            state.lost()
            if monitor is not None:
                sock.disable_monitor()
                monitor.close()
            sock.close()

    def _connected(self, first: bool) -> None:
        self.connected, self.connected_at = True, time.monotonic()
        self.ever_connected = True
        if not first:
            self.reconnects += 1
            log.warning("%s: connected again", self.name)


def _said(ended: str) -> str:
    return {"quiet": f"no answer for {STALL_S:g} s", "stop": "stopped"}.get(ended, ended)


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
        self.watched = -1  # a viewer's: the request of the answer it is sent
        self.taken = 0  # frames taken since credit was last granted
        self.limits: tuple[int, int] | None = None  # once the model is known: its own
        self._sized = None  # the architecture the limits were computed for

    def send(self, message: wire._Message) -> None:
        """Never waits: with no server to take it (none yet, or one that refused this
        client's key) the message is dropped, and the silence is noticed as a lost server."""
        message = structs.replace(message, token=self.source.token)
        try:
            self.sock.send_multipart(wire.pack(message), flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            pass

    def hello(self) -> None:
        self.send(wire.Hello(detail=self.source.detail, lossless=self.source.lossless,
                             credit=CREDIT, watch=self.source.watch))  # fmt: skip

    def ping(self) -> None:
        now = time.monotonic()
        if now - self.pinged >= wire.PING_S:
            self.pinged = now
            self.send(wire.Ping())

    def commands(self) -> str:
        while True:
            try:
                command = self.source._outbox.get_nowait()
            except queue.Empty:
                return ""
            if command[0] == "reconnect":
                return "reconnect"
            if command[0] == "cancel":
                self.send(wire.Cancel())
            elif command[0] == "intervene":
                self.send(wire.Intervene(interventions=command[1]))
            else:
                _, request, prompt, gen, detail, interventions = command
                self.asked = request
                self.send(wire.Generate(request=request, prompt=prompt, gen=gen, detail=detail,
                                        interventions=interventions))  # fmt: skip

    def receive(self, parts: list[bytes]) -> None:
        handoff = self.source.handoff
        try:
            message, buffers = wire.unpack(parts, self.source.limits[0], wire.ServerMessage)
            if isinstance(message, wire.FrameMessage):
                frame = wire.frame_from(message, buffers)
                if self.source.watch and message.request != self.watched:  # another answer:
                    self.watched, self.seq = message.request, message.seq - 1  # its own count
                if message.seq > self.seq + 1:
                    handoff.count_dropped(message.seq - self.seq - 1)
                self.seq = max(self.seq, message.seq)
                if message.request == self.asked or self.source.watch:
                    handoff.publish(frame)  # waits for room when lossless
                    self.credit()
            elif isinstance(message, wire.StatusMessage):
                if self.server and message.server != self.server:  # a restarted server
                    self.source.cut_off = max(self.source.cut_off, self.asked)
                    self.status = None
                self.server = message.server
                self.status = wire.status_from(message.status, self.status)
                self._size_for(self.status)
                handoff.set_status(self._as_seen_here(self.status))
            elif isinstance(message, wire.FailureMessage):
                handoff.fail(Failure(message.message, message.user_error))
            elif isinstance(message, wire.Busy):
                handoff.fail(Failure(f"{self.source.name}: {message.message}", True))
                self.asked = 0
            else:
                self._refused(message.code, message.message)
            self.heard = time.monotonic()
        except wire.WireError as error:  # a bad message from the server: dropped, and said
            handoff.fail(Failure(f"{self.source.name} sent a bad message: {error}", True))

    def _size_for(self, status: Status) -> None:
        """The limits a frame of this model at this client's detail needs (wire.frame_limit):
        until they are known, no request goes out."""
        if status.architecture is None:
            if status.state not in ("starting", "loading"):
                self.limits = self.source.limits  # an older server that says nothing of it
            return
        if status.architecture is self._sized:  # every status carries it on: sized once
            return
        self._sized = status.architecture
        settings = self.source.settings
        # the connection's detail, or a trace's own (its attention window, all of d_ff)
        traced = Detail("float32", settings.capture.trace_window)
        # a viewer is sent each answer at its asker's detail, whichever that is
        details = (*LEVELS.values(), traced) if self.source.watch else (self.source.detail, traced)
        size = max(wire.frame_limit(status.architecture, detail, settings.generation.context)
                   for detail in details)  # fmt: skip
        self.limits = (size, max(2, min(256, QUEUE_BYTES // size)))

    def credit(self) -> None:
        if not self.source.lossless:
            return
        self.taken += 1
        if self.taken >= CREDIT // 4:
            self.send(wire.Credit(n=self.taken))
            self.taken = 0

    def _refused(self, code: str, message: str) -> None:
        if code in ("auth", "version"):
            what = "refused the token (--token-file)" if code == "auth" else message
            self.source.handoff.fail(Failure(f"{self.source.name} {what}", True))
            self.source._dead = True  # after the failure: whoever sees it dead knows why
        elif code == "schema" and "before hello" in message:
            self.hello()  # the server restarted and forgot this session
        else:
            self.source.handoff.fail(Failure(f"{self.source.name} refused: {message}", True))

    def _as_seen_here(self, status: Status) -> Status:
        """A server that never heard of the answer a lost connection cut off says "ready" with
        an older request number: here that answer has ended, stopped."""
        cut_off = self.source.cut_off
        if status.state == "ready" and status.request < cut_off:
            return replace(status, state="stopped", request=cut_off, message=CUT_OFF)
        return status

    def _stopped(self) -> Status:
        """The answer in flight, cut off: it ends as stopped."""
        base = self.status or Status("ready")
        return replace(base, state="stopped", request=max(base.request, self.asked),
                       message=CUT_OFF)  # fmt: skip

    def lost(self) -> None:
        if self.asked and self.status is not None and self.status.state == "generating":
            self.source.cut_off = self.asked
            self.source.handoff.set_status(self._stopped())
