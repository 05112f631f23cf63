"""`neuroweb kiosk`: an installation that runs unattended for days.

The window is fullscreen on the chosen display, the cursor hidden, the controls locked (only
`kiosk.exit_keys` or a signal ends it). A Playlist chooses the prompts, and the scenes and looks
that take turns; the Kiosk drives the App from the outside, once per frame:

- a finished answer stays `pause_s`, then the next prompt goes (each starts from an empty
  context, so memory stays bounded);
- every `scene_s` the next scene (and look, when `kiosk.presets` lists some) crossfades in;
- the model process is replaced within a frame of failing (an exception, a crash) or of
  stalling (`stall_s` without a token while answering); while it loads (and at the start), the
  last finished answer plays again (attract.py);
- a watchdog thread ends the process if the render loop itself stops (`frozen_s`), so the
  supervisor that started it (systemd, a login script) can start it again;
- everything is logged to a size-capped, rotating file.
"""

import logging
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path

from msgspec import structs

from visualizer import heap
from visualizer.attract import Attract, ReplayWhileLoading
from visualizer.clock import RealClock
from visualizer.config import KioskSettings, Settings, load_settings, parse_keys
from visualizer.errors import UserError
from visualizer.logs import FILE_FORMAT
from visualizer.render.app import App
from visualizer.sound.speakers import Speakers
from visualizer.sources import leave_a_core, open_source

LOG_BACKUPS = 3
SOUND_RETRY_S = 30.0  # a lost sound device is looked for again this often
REFUSED_WAIT_S = 5.0  # after a refused prompt (a shared server busy with another client)
RESTART_BACKOFF_S = (1, 2, 4, 8, 16, 32, 60)  # waits before each further restart while the
#                                              source gives no token (then the last again)


@dataclass
class Playlist:
    """Prompts in order or shuffled (a new seeded order every round), and looks in turn."""

    settings: KioskSettings
    seed: int = 0
    _order: list[str] = field(default_factory=list)
    _round: int = 0
    _look: int = -1

    def next_prompt(self) -> str:
        if not self._order:
            self._order = list(self.settings.prompts)
            if self.settings.shuffle:
                random.Random(self.seed * 1_000_003 + self._round).shuffle(self._order)
            self._round += 1
        return self._order.pop(0)

    def next_look(self) -> tuple[str, str | None]:
        """The next scene, and the preset to wear with it (None: keep the current one)."""
        self._look += 1
        scenes, presets = self.settings.scenes, self.settings.presets
        preset = presets[self._look % len(presets)] if presets else None
        return scenes[self._look % len(scenes)], preset


def kiosk_log(settings: KioskSettings) -> logging.Logger:
    """The kiosk's logger; its file also takes every other part's ("neuroweb.remote", ...)."""
    log = logging.getLogger("neuroweb")
    log.setLevel(logging.INFO)
    for old in list(log.handlers):  # an earlier kiosk in this process (a soak, a test)
        log.removeHandler(old)
        old.close()
    handler = RotatingFileHandler(settings.log_file, maxBytes=settings.log_bytes,
                                  backupCount=LOG_BACKUPS, encoding="utf-8")  # fmt: skip
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    log.addHandler(handler)
    return logging.getLogger("neuroweb.kiosk")


def kiosk_source(settings: Settings, log: logging.Logger) -> tuple[ReplayWhileLoading, Attract]:
    """The kiosk's model (a local process, or `model.source`'s server) with its last answer
    replayed while it loads; the Attract keeps that answer. Started."""
    k = settings.kiosk
    attract = Attract(Path(k.attract_file) if k.attract_file else None, settings.model.name, log)
    source = ReplayWhileLoading(open_source(settings), attract, time.monotonic)
    return source.start(), attract


class Kiosk:
    def __init__(
        self, app: App, looks: dict[str, Settings], log: logging.Logger, attract: Attract
    ) -> None:
        """`looks`: the rotating presets' settings, loaded (and so validated) at start;
        `attract`: what keeps the answer the app's source replays (kiosk_source)."""
        self.app, self.looks, self.log, self.attract = app, looks, log, attract
        self.settings = app.settings.kiosk
        self.playlist = Playlist(self.settings, app.settings.generation.seed)
        self.restarts = 0
        self.answers = 0
        now = time.monotonic()
        self._idle_since: float | None = now
        self._last_token = now
        self._tokens = 0
        self._scene_since = now
        self._sound_tried = now
        self._backoff = 0  # restarts since the source last gave tokens
        self._next_restart = now
        self._troubled = False  # the last tick saw a source gone without a word
        self._refusal: str | None = None  # the last refusal logged (once until tokens again)
        self._ask_after = now  # a refused prompt's successor waits REFUSED_WAIT_S
        # a device that is not there can take 100 ms to fail (SDL joins its ALSA hotplug
        # thread), too long for a frame: the search runs on a thread of its own
        self._sound_search = ThreadPoolExecutor(1, thread_name_prefix="neuroweb-sound")
        self._sound_found: Future | None = None
        self.rotate()

    def tick(self) -> None:
        """Once per frame, after `app.frame()`."""
        app, now = self.app, time.monotonic()
        # stopping (the exit keys, or a signal that also ended the model): nothing new starts
        if not app.running:
            return
        if app.tokens_seen != self._tokens:
            self._tokens, self._last_token, self._refusal = app.tokens_seen, now, None
        quiet_s = now - self._last_token
        # answering with no new token, or a prompt asked of a ready model that never began
        waiting = app.state in ("ready", "finished", "stopped") and not app.idle
        stalled = (app.state == "generating" or waiting) and quiet_s > self.settings.stall_s
        trouble = app.intake.trouble or (f"{app.source.name} stalled" if stalled else None)
        speechless = bool(trouble) and not app.source.alive and trouble.endswith(" died")
        seen_before, self._troubled = self._troubled, speechless
        if speechless and not seen_before:  # healed from the next frame: a source that has
            return  # just stopped has its last words (its failure) drained by then, for the log
        if trouble and now >= self._next_restart:
            self.restart(trouble)
            return
        if trouble:  # healing already: the next try waits its turn (RESTART_BACKOFF_S)
            return
        if self._backoff and app.tokens_seen and quiet_s < 1.0 and not app.intake.replaying:
            # the model's own tokens again (not the last answer replayed while it loads)
            self.log.info("%s answers again after %d restarts", app.source.name, self._backoff)
            self._backoff = 0
        refused = app.intake.take_refusal()
        if refused:  # a prompt the model refused: go on with the next, in a while
            if refused != self._refusal:  # said once, not every REFUSED_WAIT_S
                self.log.warning("prompt refused: %s", refused)
            self._refusal, self._idle_since = refused, now
            self._ask_after = now + REFUSED_WAIT_S
        if app.idle and app.state in ("ready", "finished", "stopped") and now >= self._ask_after:
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since >= self.settings.pause_s or app.state == "ready":
                self.ask()
        if now - self._scene_since >= self.settings.scene_s:
            self.rotate()
        if not app.has_sound and app.settings.sound.enabled:
            self.reopen_sound(now)

    def reopen_sound(self, now: float) -> None:
        """The sound device failed or was never there: look for it again now and then (off
        this thread), and take it up once found."""
        if self._sound_found is None:
            if now - self._sound_tried >= SOUND_RETRY_S:
                self._sound_tried = now
                settings = self.app.settings.sound
                self._sound_found = self._sound_search.submit(Speakers.open, settings)
            return
        if not self._sound_found.done():
            return
        speakers, _ = self._sound_found.result()
        self._sound_found = None
        if speakers is not None:
            self.app.use_speakers(speakers)
            self.log.info("sound is back")

    def ask(self) -> None:
        prompt = self.playlist.next_prompt()
        self.log.info("prompt: %s", prompt)
        heap.trim()  # textures and small objects still come and go in the heap
        self.app.ask(prompt, max_tokens=self.settings.tokens)
        self.answers += 1
        self._idle_since = None
        self._last_token = time.monotonic()

    def rotate(self) -> None:
        scene, preset = self.playlist.next_look()
        if preset is not None:  # its look, sound and safety; the model and playlist stay
            look = self.looks[preset]
            settings = structs.replace(self.app.settings, look=look.look, sound=look.sound,
                               safety=look.safety)  # fmt: skip
            if settings != self.app.settings:
                self.app.apply(settings)
        self.app.stage.show(scene)
        self._scene_since = time.monotonic()
        self.log.info("scene: %s%s", scene, f", look: {preset}" if preset else "")

    def restart(self, why: str) -> None:
        """Heal the source (a new model process, or a new connection to the server); the
        window draws on meanwhile, replaying the last answer."""
        if self._backoff == 0:  # one line per change of state: healthy → healing, not per try
            self.log.error("restarting %s: %s (again after 1, 2, 4 … 60 s until it answers)",
                           self.app.source.name, why)  # fmt: skip
        self.app.restart_source(why)
        self.restarts += 1
        wait = RESTART_BACKOFF_S[min(self._backoff, len(RESTART_BACKOFF_S) - 1)]
        self._backoff += 1
        self._next_restart = time.monotonic() + wait
        self._idle_since = time.monotonic()
        self._last_token = time.monotonic()

    def close(self) -> None:
        self.attract.wait_saved(timeout=5.0)
        self._sound_search.shutdown(wait=True)
        if self._sound_found is not None:  # found as we stopped: not the app's to close
            speakers, _ = self._sound_found.result()
            if speakers is not None:
                speakers.close()


class Watchdog:
    """Ends the process when the render loop has not finished a frame for `limit_s`: a loop
    stuck in a driver cannot be saved from inside; its supervisor starts a fresh one."""

    def __init__(self, limit_s: float, log: logging.Logger) -> None:
        self.limit_s, self.log = limit_s, log
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="neuroweb-watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        self._beat = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(self.limit_s / 4):
            stuck = time.monotonic() - self._beat
            if stuck > self.limit_s:
                self.log.critical("the render loop has been stuck for %.0f s: exiting", stuck)
                logging.shutdown()
                os._exit(3)


def looks_of(settings: Settings) -> dict[str, Settings]:
    """Every preset the kiosk rotates through, loaded now so a bad one stops it at the start."""
    return {name: load_settings(name) for name in settings.kiosk.presets}


def run_kiosk(settings: Settings) -> int:
    import pygame

    from visualizer.gl.context import WindowTarget, WindowUnavailable
    from visualizer.render.controls import Controls

    k, w = settings.kiosk, settings.window
    looks = looks_of(settings)
    log = kiosk_log(k)
    log.info("kiosk starting: %d prompts, scenes %s, looks %s", len(k.prompts), k.scenes,
             list(looks) or "-")  # fmt: skip
    settings = leave_a_core(settings)
    try:
        target = WindowTarget((w.width, w.height), True, w.vsync, "neuroweb", display=k.display)
    except WindowUnavailable as exc:
        log.error("no window: %s", exc)
        raise UserError(f"kiosk: {exc}") from None
    pygame.mouse.set_visible(False)
    speakers, silent_because = Speakers.open(settings.sound)
    if silent_because:
        log.warning(silent_because)
    source, attract = kiosk_source(settings, log)
    app = App(settings, target, source, RealClock(), adaptive=True, speakers=speakers,
              controls=Controls(parse_keys(k.exit_keys)), log=log)  # fmt: skip
    kiosk = Kiosk(app, looks, log, attract)
    try:
        with Watchdog(k.frozen_s, log) as watchdog:
            while app.running:
                app.frame()
                kiosk.tick()
                watchdog.beat()
    finally:
        log.info("kiosk stopping after %d answers, %d restarts", kiosk.answers, kiosk.restarts)
        kiosk.close()
        app.release()
        source.stop()
        if app.speakers is not None:  # the one it has now (a lost device is reopened)
            app.speakers.close()
        target.close()
    return 0
