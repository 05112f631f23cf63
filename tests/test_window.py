"""The live window for real: a pygame OpenGL window under Xvfb, fed by a real model stream.

The window runs in a fresh process: a process that has used an EGL context (the offscreen tests)
cannot then make a GLX context current (X error BadAccess from X_GLXMakeCurrent, which ends the
process). neuroweb itself never mixes the two: a run is either a window or headless.
"""

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pygame

from visualizer.clock import RealClock
from visualizer.config import load_settings
from visualizer.gl.context import WindowTarget
from visualizer.render.app import App
from visualizer.render.controls import Command, Controls
from visualizer.render.rest import LOADING_FPS
from visualizer.sound.speakers import Speakers
from visualizer.sources.local import LocalSource

MAX_FRAMES = 3000  # a bound, not a timing: the loop ends long before on a working machine


def _key(key: int, text: str = "", mod: int = 0) -> list[pygame.event.Event]:
    events = [pygame.event.Event(pygame.KEYDOWN, key=key, mod=mod, unicode=text)]
    if text:
        events.append(pygame.event.Event(pygame.TEXTINPUT, text=text))
    return events


def _window_session(model: str, folder: str) -> None:
    """In its own process: open the window (the loading screen at its lower frame cap), stream
    and play, screenshot with Ctrl+S, mute with Ctrl+M, quit with Esc. The sound goes through
    SDL's disk driver into speakers.raw."""
    os.chdir(folder)
    os.environ["SDL_AUDIODRIVER"] = "disk"
    os.environ["SDL_DISKAUDIOFILE"] = str(Path(folder) / "speakers.raw")
    settings = load_settings("default", {"model": {"name": model},
                                         "window": {"width": 640, "height": 360},
                                         "record": {"poster_width": 800,
                                                    "poster_height": 450}})  # fmt: skip
    target = WindowTarget((640, 360), False, False, "neuroweb test")
    speakers, why = Speakers.open(settings.sound)
    assert speakers is not None, why
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, RealClock(), adaptive=True, prompt="Hello",
                      speakers=speakers)  # fmt: skip
            frames, loading = 0, []
            while app.scene.tokens_seen < 5 and frames < MAX_FRAMES:
                start = time.perf_counter()
                app.frame()
                if app.pace.cap(app.loading) == LOADING_FPS:  # loading: the model imports
                    loading.append(time.perf_counter() - start)
                frames += 1
            assert app.scene.tokens_seen >= 5, app.status
            # llvmpipe: the loading screen was drawn at the lower cap, the answer is not
            assert app.pace.frame_cap == settings.window.software_fps > LOADING_FPS
            assert app.pace.cap(app.loading) == app.pace.frame_cap
            assert len(loading) >= 3 and min(loading) >= 1 / LOADING_FPS - 0.002, loading
            played = Path(folder) / "speakers.raw"
            heard_from = played.stat().st_size
            while played.stat().st_size < heard_from + 48000 and frames < MAX_FRAMES:
                app.frame()  # until the device has played another quarter second
                frames += 1
            for event in _key(pygame.K_s, mod=pygame.KMOD_CTRL):  # no TEXTINPUT while Ctrl is held
                pygame.event.post(event)
            app.frame()
            pygame.event.post(_key(pygame.K_m, mod=pygame.KMOD_CTRL)[0])
            app.frame()
            assert speakers.muted
            yaw, distance = app.camera.yaw, app.camera.distance
            for event in (
                *_key(pygame.K_h, mod=pygame.KMOD_CTRL),  # HUD
                pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(100, 100)),
                pygame.event.Event(pygame.MOUSEMOTION, rel=(40, 0), pos=(140, 100),
                                   buttons=(1, 0, 0)),  # fmt: skip
                pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(140, 100)),
                pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=2, precise_y=2.0),
            ):
                pygame.event.post(event)
            app.frame()
            assert app.hud.on and app.camera.yaw != yaw and app.camera.distance < distance
            pygame.event.post(_key(pygame.K_f, mod=pygame.KMOD_CTRL)[0])  # fullscreen and back
            app.frame()
            pygame.event.post(_key(pygame.K_f, mod=pygame.KMOD_CTRL)[0])
            app.frame()
            assert target.size == (640, 360)
            for event in _key(pygame.K_ESCAPE):
                pygame.event.post(event)
            app.run()  # returns once Esc is handled
            assert not app.running
            app.release()
        assert not stream.alive
    finally:
        speakers.close()
        target.close()


def test_window_streams_a_real_model_takes_a_screenshot_and_quits(xvfb, tiny_llama_dir, tmp_path):
    session = multiprocessing.get_context("spawn").Process(
        target=_window_session, args=(str(tiny_llama_dir), str(tmp_path))
    )
    session.start()
    session.join(300)
    assert session.exitcode == 0  # assertion failures inside exit 1, with their traceback
    shots = list(Path(tmp_path).glob("neuroweb-*.png"))
    assert len(shots) == 1
    image = pygame.image.load(shots[0])
    assert image.get_size() == (800, 450)  # the S key's poster, drawn again at its own size
    played = np.frombuffer((tmp_path / "speakers.raw").read_bytes(), "<i2")
    assert np.abs(played).max() > 300


def test_typing_goes_to_the_prompt_box_only_while_idle():
    c = Controls()
    text = pygame.event.Event(pygame.TEXTINPUT, text="h")
    assert c.handle(text, idle=True) == [] and c.box == "h"  # typing, not the HUD
    enter = _key(pygame.K_RETURN)[0]
    assert c.handle(enter, idle=True) == [Command("generate", "h")] and c.box is None
    assert c.handle(text, idle=False) == [Command("hud")]  # generating: letters are commands
    m = pygame.event.Event(pygame.TEXTINPUT, text="m")
    assert c.handle(m, idle=False) == [Command("mute")]
    two = pygame.event.Event(pygame.TEXTINPUT, text="2")
    assert c.handle(two, idle=False) == [Command("scene", 1)]
    assert c.handle(_key(pygame.K_1, mod=pygame.KMOD_CTRL)[0], idle=True) == [Command("scene", 0)]
    assert c.handle(_key(pygame.K_h, mod=pygame.KMOD_CTRL)[0], idle=True) == [Command("hud")]
    assert c.handle(enter, idle=False) == [] and c.box == ""  # Enter opens the box
    assert c.handle(text, idle=False) == [] and c.box == "h"
    assert c.handle(_key(pygame.K_ESCAPE)[0], idle=False) == [Command("quit")]
    assert c.handle(_key(pygame.K_UP)[0], idle=True) == [Command("temperature", 0.1)]
