"""The operator's view (`neuroweb run --operator`): a second window for the speaker's laptop while
the audience's window, clean, fills the projector. It shows the current and the next cue, the
speaker's note, a talk timer, tok/s, the recording and the stream, warnings, the prompt being
typed and, small, the picture the hall sees; a clicker's keys pressed in it step the show as in
the audience's window.

It is a second viewer of the same frames, not a second model: the App's process sends what it
shows (`Glance`, a few times a second, and the audience's picture once a second) to a process of
its own (render/operator_window.py draws it with pygame, no GL), which sends back the keys
pressed in it. Each direction is one pipe of msgspec messages. A thread sends the glances from a
latest-value slot, so the render loop never waits on the other window; the window's keys are
read without waiting, each frame. Closing the operator's window leaves the show running.
"""

import logging
import multiprocessing as mp
import threading
import time

import moderngl
import msgspec
import numpy as np
import pygame

from visualizer.config import SCENES
from visualizer.render.operator_window import Closed, FromWindow, Glance, Key, Picture, Text, serve
from visualizer.render.renderer import read_rgb

GLANCE_S = 0.25  # what the App shows, sent this often (a window at rest draws 4 frames a second)
PICTURE_S = 1.0  # the audience's picture, this often
PICTURE_WIDTH = 480  # pixels across, at most (a 1080p picture is read every 4th pixel)
NOTICES_KEPT = 3  # the newest notices shown
NOTICE_S = 30.0  # a notice stays on the operator's screen this long (5 s on the window's HUD)
JOIN_S = 2.0  # the window's process is given this long to end, then ended

log = logging.getLogger("neuroweb.show")




def _prose(note: str) -> str:
    """A note's text as paragraphs: its lines joined, its blank lines kept (TOML's \"\"\"
    breaks lines where the file was wrapped, not where the speaker meant)."""
    return "\n".join(" ".join(p.split()) for p in note.strip().split("\n\n"))


def picture_of(fbo: moderngl.Framebuffer, size: tuple[int, int]) -> Picture:
    """The frame in `fbo`, every n-th pixel, at most PICTURE_WIDTH across."""
    step = max(1, -(-size[0] // PICTURE_WIDTH))
    small = np.ascontiguousarray(read_rgb(fbo, size)[::step, ::step])
    return Picture(small.shape[1], small.shape[0], small.tobytes())


class OperatorView:
    """The App's end of the operator's window: `publish(app)` each frame, `events()` for the
    keys pressed in it, `close()` on every way out."""

    def __init__(self, audience_display: int = 0, size: tuple[int, int] = (1280, 720)) -> None:
        context = mp.get_context("spawn")
        glances_out, self._glances = context.Pipe(duplex=False)  # (reader, writer)
        self._keys, keys_in = context.Pipe(duplex=False)
        self._process = context.Process(target=serve, name="neuroweb-operator", daemon=True,
                                        args=(audience_display, size, glances_out, keys_in))
        self._process.start()
        glances_out.close()
        keys_in.close()
        self.open = True
        self._slot: bytes | None = None  # the newest glance not yet sent
        self._ready = threading.Condition()
        self._sender = threading.Thread(target=self._send, name="operator-view", daemon=True)
        self._sender.start()
        self._sent_at = self._picture_at = -np.inf
        self._recording: tuple[str, float] = ("", 0.0)  # the file, and when it began
        self._talk_began: float | None = None
        self._notices: dict[str, float] = {}  # text → when last seen

    def _send(self) -> None:
        while True:
            with self._ready:
                while self._slot is None and self.open:
                    self._ready.wait()
                if not self.open:
                    return
                message, self._slot = self._slot, None
            try:
                self._glances.send_bytes(message)
            except OSError:  # the window's process is gone
                return

    def waiting(self) -> bool:
        """A key pressed in the operator's window, not yet taken."""
        return self.open and self._keys.poll()

    def events(self) -> list[pygame.event.Event]:
        """The keys pressed in the operator's window since the last call, as the audience's
        window's own events: the App's controls take them as they take its keys."""
        events = []
        while self.waiting():
            try:
                message = msgspec.msgpack.decode(self._keys.recv_bytes(), type=FromWindow)
            except (EOFError, OSError, msgspec.DecodeError):
                message = Closed()
            if isinstance(message, Key):
                events.append(pygame.event.Event(pygame.KEYDOWN, key=message.key,
                                                 mod=message.mod, unicode=""))  # fmt: skip
            elif isinstance(message, Text):
                events.append(pygame.event.Event(pygame.TEXTINPUT, text=message.text))
            else:
                log.info("the operator's window was closed; the show goes on")
                self.close()
        return events

    def publish(self, app, fbo: moderngl.Framebuffer) -> None:
        """What `app` shows now, to the operator's window (GLANCE_S apart), and the audience's
        picture from `fbo` (PICTURE_S apart): call it before the operator's chrome is drawn."""
        now = time.monotonic()
        if not self.open or now - self._sent_at < GLANCE_S:
            return
        self._sent_at = now
        picture = None
        if now - self._picture_at >= PICTURE_S:
            self._picture_at = now
            picture = picture_of(fbo, app.target.size)
        message = msgspec.msgpack.encode(self._glance(app, now, picture))
        with self._ready:
            self._slot = message
            self._ready.notify()

    def _glance(self, app, now: float, picture: Picture | None) -> Glance:
        recording = str(app.recorder.path or "")
        if recording != self._recording[0]:
            self._recording = (recording, now)
        for _, text in app.hud.notices:
            self._notices.pop(text, None)  # the newest last
            self._notices[text] = now
        errors = (*app.looks.current.shaders.errors.values(), app.intake.failure or "")
        self._notices = {t: at for t, at in self._notices.items() if now - at < NOTICE_S}
        words = "".join(t.text for t in app.scene.tokens if not t.is_prompt)
        glance = Glance(
            state=app.state, model=app.intake.model_name, rate=app.intake.rate().strip(),
            fps=app.governor.stats()[0], recording=recording,
            recording_s=now - self._recording[1] if recording else 0.0,
            streaming=app.settings.record.stream if app.recorder.streaming else "",
            scene=SCENES[round(app.stage.target)], blackout=app.stage.blackout,
            paused=app.intake.paused, typing=app.controls.typing(app.idle),
            prompt=app.prompt_shown, answer=words[-600:], changed=", ".join(app.scene.changed),
            notices=tuple(self._notices)[-NOTICES_KEPT:], errors=tuple(filter(None, errors)),
            picture=picture,
        )  # fmt: skip
        return self._cue(app.cues, glance, now) if app.cues is not None else glance

    def _cue(self, show, glance: Glance, now: float) -> Glance:
        """Where the talk is: its cue, the next, the note, the time since its first cue."""
        index = show.index
        if index >= 0 and self._talk_began is None:
            self._talk_began = now
        here = show.cues[index] if index >= 0 else None
        after = show.cues[index + 1] if index + 1 < len(show.cues) else None
        return msgspec.structs.replace(
            glance, talk=show.path.name, cue=index + 1, cues=len(show.cues),
            heading=here.heading if here else "", note=_prose(here.note) if here else "",
            next_heading=after.heading if after else "",
            next_note=_prose(after.note) if after else "", show_on=show.on,
            talk_s=now - self._talk_began if self._talk_began is not None else None,
        )  # fmt: skip

    def close(self) -> None:
        """The operator's window and its thread end; safe to call more than once."""
        with self._ready:
            was_open, self.open = self.open, False
            self._ready.notify()
        if not was_open and not self._process.is_alive():
            return
        self._sender.join(JOIN_S)
        self._glances.close()  # the window's process sees the end of its pipe, and ends
        self._process.join(JOIN_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(JOIN_S)
        self._keys.close()
