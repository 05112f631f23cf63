"""A remote: OSC messages over UDP (`neuroweb run --osc HOST:PORT`) become commands of the one
table (commands.py), as keys and cues do, so that show-control software (QLab, TouchOSC, a
lighting desk) steps a talk's cues, asks a prompt, changes the scene or the look, blacks out and
records (docs/cues.md says each message).

A thread of its own receives the messages (python-osc parses them) and checks each one whole:
its address, its arguments' count and types, and what it names (a cue's number, a scene, a
preset, an ablation's spelling). Only a command that can run reaches the render loop, through a
small bounded queue that the loop empties each frame without waiting (`take`). A message that
is not understood is logged, once for each different complaint, and ignored. The thread blocks
on its socket and on a wake-up socket, so `close` (the end of the `with`, on every way out of
the window) stops it at once and frees the port.
"""

import logging
import queue
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from pythonosc import osc_message
from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types
from pythonosc.parsing.osc_types import get_string

from visualizer.config import SCENES, load_settings
from visualizer.errors import UserError
from visualizer.interventions import interventions_from
from visualizer.network import udp_socket
from visualizer.render.commands import COMMANDS
from visualizer.render.controls import MAX_PROMPT_CHARS, Command

PREFIX = "/neuroweb/"
QUEUE_COMMANDS = 64  # commands waiting for the next frame; more means the window is stuck
SAID_AT_MOST = 256  # different complaints logged; past that, one line says they are not
DATAGRAM_BYTES = 65536
OSC_TAGS = set("ihfdsbrmtTFN[]")  # the argument types python-osc reads

log = logging.getLogger("neuroweb.show.osc")  # INFO on the speaker's terminal, as the cues


class Refused(Exception):
    """A message that is not understood: why, in words, for the log."""


def _on(value: Any, address: str) -> bool:
    """An on/off argument: 1 or 0, or OSC's own True and False."""
    if value in (0, 1) and type(value) in (int, bool):
        return bool(value)
    raise Refused(f"{address} expects 1 (on) or 0 (off), got {value!r}")


def parse(datagram: bytes) -> tuple[str, list]:
    """An OSC message's address and arguments; Refused if it is not one (a bundle is not read:
    show-control software sends messages)."""
    if datagram.startswith(b"#bundle"):
        raise Refused("an OSC bundle (send each message on its own)")
    try:
        address, index = get_string(datagram, 0)
        tags = get_string(datagram, index)[0] if datagram[index:] else ","
        if not tags.startswith(",") or not set(tags[1:]) <= OSC_TAGS:
            raise Refused(f"{address}: arguments of unknown types {tags!r}")
        return address, OscMessage(datagram).params
    except (osc_types.ParseError, osc_message.ParseError, UnicodeDecodeError) as exc:
        raise Refused(f"not an OSC message ({exc})") from None


class Remote:
    """The OSC server of a window: `with Remote(host, port, cues) as remote:`, then the render
    loop runs `remote.take()` each frame. `cues`: how many cues the talk has (0: no cue list,
    and the messages that step one are refused)."""

    def __init__(self, host: str, port: int, cues: int = 0) -> None:
        self.host, self.cues = host, cues
        self._sock = udp_socket(host, port, "--osc")
        self.port = self._sock.getsockname()[1]
        self._commands: queue.Queue[Command] = queue.Queue(QUEUE_COMMANDS)
        self._wake_up, self._woken = socket.socketpair()
        self._said: set[str] = set()
        self._thread = threading.Thread(target=self._serve, name="osc", daemon=True)
        self.failure: BaseException | None = None  # a bug in the thread, raised by `take`
        self._messages: dict[str, tuple[int, Callable[[Any], Command]]] = {
            "next": (0, lambda _: self._cue(Command("cue", 1))),
            "prev": (0, lambda _: self._cue(Command("cue", -1))),
            "cue": (1, self._go),
            "prompt": (1, self._prompt),
            "scene": (1, self._scene),
            "preset": (1, self._preset),
            "blackout": (1, lambda on: Command("blackout", _on(on, "/neuroweb/blackout"))),
            "record": (1, lambda on: Command("recording", _on(on, "/neuroweb/record"))),
            "ablate": (1, self._ablate),
        }  # fmt: skip

    def __enter__(self) -> "Remote":
        self._thread.start()
        log.info("osc: listening on %s:%d (%s…)", self.host, self.port, PREFIX)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and free the port; safe to call more than once."""
        if self._thread.is_alive():
            self._wake_up.send(b"x")
            self._thread.join()
        for sock in (self._sock, self._wake_up, self._woken):
            sock.close()

    def waiting(self) -> bool:
        """A command has arrived and not been taken."""
        return not self._commands.empty()

    def take(self) -> list[Command]:
        """The commands that arrived since the last call, oldest first; never waits."""
        if self.failure is not None:
            raise RuntimeError(f"the OSC remote failed: {self.failure!r}") from self.failure
        taken = []
        while True:
            try:
                taken.append(self._commands.get_nowait())
            except queue.Empty:
                return taken

    # --- the thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_READ)
                selector.register(self._woken, selectors.EVENT_READ)
                while True:
                    ready = [key.fileobj for key, _ in selector.select()]
                    if self._woken in ready:
                        return
                    datagram, sender = self._sock.recvfrom(DATAGRAM_BYTES)
                    self.receive(datagram, sender[0])
        except BaseException as exc:  # a bug: the render loop raises it (take)
            self.failure = exc

    def receive(self, datagram: bytes, sender: str = "") -> Command | None:
        """One datagram: its command queued for the render loop, or the complaint logged."""
        try:
            address, params = parse(datagram)
            command = self.command(address, params)
            self._commands.put_nowait(command)
        except Refused as exc:
            self._say(f"osc: ignored: {exc}" + (f" (from {sender})" if sender else ""))
            return None
        except queue.Full:
            self._say("osc: ignored: the window has not taken the commands before it")
            return None
        log.info("osc: %s", " ".join([address, *map(repr, params)]))
        return command

    def _say(self, line: str) -> None:
        if line in self._said or len(self._said) > SAID_AT_MOST:
            return
        if len(self._said) == SAID_AT_MOST:
            line = "osc: more messages ignored; further complaints are not logged"
        self._said.add(line)
        log.warning("%s", line)

    def command(self, address: str, params: list) -> Command:
        """The command a message asks for; Refused says why not."""
        name = address.removeprefix(PREFIX)
        if not address.startswith(PREFIX) or name not in self._messages:
            raise Refused(f"unknown address {address!r}; the addresses are "
                          + ", ".join(PREFIX + m for m in self._messages))  # fmt: skip
        count, make = self._messages[name]
        if len(params) != count:
            raise Refused(f"{address} takes {count} argument(s), got {len(params)}")
        command = make(params[0] if count else None)
        if command.name not in COMMANDS:  # the table is the one place names are defined
            raise Refused(f"{address}: no command {command.name!r}")
        return command

    def _cue(self, command: Command) -> Command:
        if not self.cues:
            raise Refused("no cue list to step (run --cues TALK.toml)")
        return command

    def _go(self, number: Any) -> Command:
        if type(number) is not int:
            raise Refused(f"/neuroweb/cue expects a whole number (int), got {number!r}")
        if not 1 <= number <= self.cues:
            self._cue(Command("go", number))  # no cue list at all
            raise Refused(f"/neuroweb/cue {number}: the cues are 1–{self.cues}")
        return Command("go", number)

    def _text(self, value: Any, address: str) -> str:
        if type(value) is not str:
            raise Refused(f"{address} expects a string, got {value!r}")
        return value

    def _prompt(self, text: Any) -> Command:
        text = self._text(text, "/neuroweb/prompt")
        if not text.strip() or len(text) > MAX_PROMPT_CHARS:
            raise Refused(f"/neuroweb/prompt: a prompt is 1–{MAX_PROMPT_CHARS} characters")
        return Command("generate", text)

    def _scene(self, name: Any) -> Command:
        name = self._text(name, "/neuroweb/scene")
        if name not in SCENES:
            raise Refused(f"/neuroweb/scene {name!r}: the scenes are {', '.join(SCENES)}")
        return Command("scene", SCENES.index(name))

    def _preset(self, name: Any) -> Command:
        name = self._text(name, "/neuroweb/preset")
        try:
            load_settings(name)  # read here, so that one that does not load never reaches a frame
        except UserError as exc:
            raise Refused(f"/neuroweb/preset {name!r}: {exc}") from None
        return Command("preset", name)

    def _ablate(self, specs: Any) -> Command:
        """What is switched off, exactly (as a cue's `ablate`): specs apart by commas or
        spaces; "" switches everything back on."""
        specs = self._text(specs, "/neuroweb/ablate")
        try:
            changes = interventions_from(tuple(specs.replace(",", " ").split()), ())
        except UserError as exc:
            raise Refused(f"/neuroweb/ablate {specs!r}: {exc}") from None
        return Command("intervene", changes)
