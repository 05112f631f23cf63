"""A window at rest draws only as fast as its picture changes (render/rest.py): before the first
prompt and between answers the camera's sway eases to a stop and the frame cap drops to
REST_FPS, and input or the source's news wakes it at once."""

import multiprocessing
import threading
import time

import pygame

from visualizer.clock import RealClock
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget, WindowTarget
from visualizer.render.app import App
from visualizer.render.rest import REST_FPS, STILL_S, WAKE_S, Pace
from visualizer.sources.local import LocalSource

BOUND_S = 60.0  # a bound on waits, not a timing: each ends long before on a working machine


def _until(app: App, done, seconds: float = BOUND_S) -> int:
    """Frames drawn until `done()`, at most `seconds` of them."""
    frames, end = 0, time.monotonic() + seconds
    while not done():
        assert time.monotonic() < end, app.status
        app.frame()
        frames += 1
    return frames


def test_at_rest_the_window_draws_at_rest_fps_holds_still_and_wakes_for_a_prompt(tiny_llama_dir):
    settings = load_settings("default", {"model": {"name": str(tiny_llama_dir)}})
    target = HeadlessTarget((320, 180), like_a_window=True)  # the bench's stand-in for a window
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, RealClock(), adaptive=False)
            _until(app, lambda: app.state == "ready" and not app.loading)
            assert not app.pace.resting  # the model just loaded: a change
            _until(app, lambda: app.pace.resting, STILL_S + BOUND_S)
            yaw, start = app.camera.yaw, time.monotonic()
            frames = _until(app, lambda: time.monotonic() - start >= 1.0)
            assert frames <= REST_FPS + 1, frames  # each frame sleeps out 1/REST_FPS
            assert app.camera.yaw == yaw  # the sway has eased to a stop
            app.ask("Hello")
            app.frame()
            assert not app.pace.resting  # an answer asked for: full pace at once
            _until(app, lambda: app.tokens_seen > 0)
            assert app.camera.yaw != yaw  # the sway is back
            _until(app, lambda: app.pace.resting, STILL_S + BOUND_S)  # after the answer: rest
            app.release()
    finally:
        target.close()


def _window_at_rest(model: str, result) -> None:
    """In its own process (pygame's display is per process): a window at rest, a key pressed
    during its sleep, and how long that frame took."""
    settings = load_settings("default", {"model": {"name": model},
                                         "window": {"width": 320, "height": 180}})  # fmt: skip
    target = WindowTarget((320, 180), False, False, "neuroweb rest test")
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, RealClock(), adaptive=False)
            _until(app, lambda: app.pace.resting, STILL_S + BOUND_S)
            app.frame()  # a whole frame at rest: it sleeps out 1/REST_FPS
            key = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LSHIFT, mod=0, unicode="")
            press = threading.Timer(0.05, pygame.event.post, (key,))
            start = time.perf_counter()
            press.start()
            app.frame()
            result.put((time.perf_counter() - start, app.pace.resting))
            app.release()
    finally:
        target.close()


def test_a_key_wakes_a_window_at_rest_at_once(xvfb, tiny_llama_dir):
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_window_at_rest, args=(str(tiny_llama_dir), results))
    child.start()
    took, resting = results.get(timeout=BOUND_S * 2)
    child.join(BOUND_S)
    assert child.exitcode == 0
    # woken in the slice after the key came (0.05 s in), not at the end of the rest frame
    assert took < 1 / REST_FPS - 0.05, took
    assert not resting


def test_at_rest_a_source_that_never_waits_is_asked_once_a_slice():
    """A saved run's player answers at once: the rest frame must sleep between its questions,
    not spin through them for a quarter of a second."""
    pace = Pace(60, rests=True)
    pace.changed -= STILL_S  # quiet long enough: at rest
    asked = []
    pace.sleep_out(time.perf_counter(), False, lambda wait: asked.append(wait) or False)
    assert pace.resting and 1 <= len(asked) <= 1 / REST_FPS / WAKE_S + 2, len(asked)
