"""The operator's window (render/operator_view.py, operator_window.py): a second window, in a
process of its own, beside a clean audience window, on a real X server. What it shows is read
from the screen; keys are pressed into it as a keyboard would (XTest)."""

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests import x11
from tests.test_app import _synthetic_run
from visualizer.cli import main
from visualizer.clock import RealClock
from visualizer.config import load_settings
from visualizer.cues import load_cues
from visualizer.gl.context import WindowTarget
from visualizer.handoff import Status
from visualizer.render.app import App
from visualizer.render.operator_view import OperatorView, _prose
from visualizer.render.operator_window import ACCENT, BACKGROUND, clock_text
from visualizer.sources.player import TracePlayer

SIZE = (640, 360)  # each window; the operator's at the screen's corner, the audience's centred
NOTE = ("Each ring of light is one of its layers, bottom to top; every token it reads or "
        "writes sends a pulse up through them.")  # fmt: skip
TALK = f'''
[[cue]]
title = "A question"
note = """{NOTE}
The yellow words are its candidates."""

[[cue]]
title = "Inside it"
scene = "architecture"
note = "Every box is a module of the loaded model."
'''
WAIT_S = 60.0  # bounded; a loaded machine starts the spawned window in seconds


def _until(app: App, done, what: str) -> None:
    """Frames until `done()` is true, for at most WAIT_S."""
    end = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < end, f"not within {WAIT_S} s: {what}"
        app.frame()


def _white(screen: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Pixels in `box` (left, top, right, bottom) of the text's white, not the dim grey of the
    next cue's note or "(no note)"."""
    left, top, right, bottom = box
    return int((screen[top:bottom, left:right].min(axis=2) > 215).sum())


def _show(talk: Path, fb: Path, display: str, result) -> None:
    """In a process of its own (pygame's display is per process, and one a test before left
    open would talk to a dead server): the window, the operator's and the keys."""
    os.environ["DISPLAY"] = display
    os.environ.pop("WAYLAND_DISPLAY", None)
    try:
        _steps(load_cues(talk), fb, display)
    except BaseException as exc:  # said to the test, which fails with it
        result.put(f"{type(exc).__name__}: {exc}")
    else:
        result.put("ok")


def _steps(show, fb: Path, display: str) -> None:
    clock = RealClock()
    frames = _synthetic_run(400)
    player = TracePlayer(frames, [i / 20 for i in range(len(frames))], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = WindowTarget(SIZE, False, False, "neuroweb")
    operator = OperatorView(0, SIZE)
    app = App(load_settings("default"), target, player, clock, adaptive=False, cues=show,
              chrome="none", operator=operator)  # fmt: skip
    keys = x11.Keyboard(display)
    inside = (100, 150)  # a point of the operator's window the audience's does not cover
    note_area, timer_area = (16, 80, 330, 300), (480, 10, 630, 50)
    try:
        _until(app, lambda: tuple(x11.pixels(fb)[4, 4]) == BACKGROUND,
               "the operator's window drawn")  # fmt: skip
        assert _white(x11.pixels(fb), note_area) == 0  # no cue yet: no note of its own

        keys.press("Next", inside)
        _until(app, lambda: show.index == 0, "PageDown in the operator's window: cue 1")
        _until(app, lambda: _white(x11.pixels(fb), note_area) > 300,
               "the note of cue 1 on the operator's screen")  # fmt: skip
        left, top, right, bottom = timer_area
        timer = x11.pixels(fb)[top:bottom, left:right]
        assert (np.abs(timer.astype(int) - ACCENT).sum(axis=2) < 60).sum() > 50  # running
        picture = x11.pixels(fb)[60:200, 340:630]
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50  # the hall's, small

        keys.press("b", inside)
        _until(app, lambda: app.stage.blackout, "B in the operator's window: the blackout")
        keys.press("b", inside)
        keys.press("Next", inside)
        _until(app, lambda: show.index == 1 and not app.stage.blackout, "cue 2, lights back")
        assert app.stage.target == 1.0  # cue 2's architecture
    finally:
        keys.close()
        app.release()
        operator.close()
        target.close()
    assert not operator._process.is_alive()


def test_the_operator_window_shows_the_show_and_its_keys_step_it(tmp_path):
    """Beside a clean window playing a run, the operator's window shows the talk (its name
    before the first cue, the hall's picture small), its keys step the show as the window's
    own do (PageDown: cue 1, its note on the operator's screen and the timer running; B: the
    blackout; PageDown: cue 2, the architecture), and it ends with the window."""
    talk = tmp_path / "talk.toml"
    talk.write_text(TALK, encoding="utf-8")
    fb = tmp_path / "fb"
    fb.mkdir()
    with x11.screen((1600, 900), fb) as display:
        spawn = multiprocessing.get_context("spawn")
        result = spawn.Queue()
        child = spawn.Process(target=_show, args=(talk, fb, display, result))
        child.start()
        try:
            said = result.get(timeout=6 * WAIT_S)
        finally:
            child.join(30)
            if child.is_alive():
                child.kill()
    assert said == "ok", said
    assert child.exitcode == 0


def test_notes_read_as_prose_and_the_timer_as_a_clock():
    """A cue file's wrapped lines are one paragraph on the operator's screen (blank lines part
    paragraphs); the talk's time is m:ss, h:mm:ss past an hour."""
    assert _prose("one\ntwo  three\n\nfour\n") == "one two three\nfour"
    assert [clock_text(s) for s in (None, 5.9, 75, 3725)] == ["0:00", "0:05", "1:15", "1:02:05"]


@pytest.mark.parametrize("args, said", [
    (["--operator", "--headless"], "run: --operator needs the window"),
    (["--display", "70"], "run: --display 70: a screen's number, 0 to 63"),
])  # fmt: skip
def test_operator_flags_that_cannot_work_are_one_line(args, said, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroweb: {said}") and len(err.strip().splitlines()) == 1, err
