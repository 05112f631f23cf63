"""Clean outputs (issue 35, item 6): a recording is the audience's picture, the scene and the
answer, without the operator's chrome (REC, the prompt box, the HUD, notices) that the window
shows over it; `--chrome` records it too; a clean window (`run --clean`) shows none of it and
writes its notices to the log. Real GL offscreen, real ffmpeg, frames of a made-up run."""

import logging
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from tests.test_app import _synthetic_run
from tests.test_cli import _assert_user_error, neuroweb
from visualizer.clock import FixedStepClock
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.handoff import Status
from visualizer.logs import NOTICES
from visualizer.render.app import App
from visualizer.render.layers.panels import PROMPT_SIZE
from visualizer.render.layers.room import Room
from visualizer.render.renderer import read_rgb
from visualizer.sources.player import TracePlayer
from visualizer.trace import write_trace

SIZE = (960, 540)
OPERATOR = {"rec", "prompt box", "hud", "notices", "hint", "errors"}  # the operator's parts
LUMA = np.array([0.2126, 0.7152, 0.0722])  # H.264 keeps luma closely, colour at half size
CODEC = 16  # at most this much luma apart where the picture sent to the encoder was the same
NOTICE = "changed: mlp:0"


def _decoded(video, size) -> np.ndarray:
    """Every frame of `video`, [n, h, w, 3] uint8."""
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(video),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 3)


def _window_and_recording(chrome: str, video, dark: bool = False):
    """A window (an interactive stand-in) mid-answer with the REC label, the HUD, a notice and
    the prompt box open, recording itself (`dark`: blacked out, B): (its last frame, the
    recording's last frame, the painter's boxes of that frame)."""
    frames = _synthetic_run(12)
    clock = FixedStepClock(30)
    player = TracePlayer(frames, [i / 30 for i in range(12)], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget(SIZE, like_a_window=True)
    settings = load_settings("default", {"sound": {"enabled": False}})
    app = App(settings, target, player, clock, adaptive=False, chrome=chrome)
    try:
        app.hud.on = True
        app.hud.notify(NOTICE)
        app.controls.box = "What is a lighthouse lens made of"
        app.stage.blackout = app.stage.darkness = dark
        app.record(video, strict=True)
        for _ in range(8):
            app.frame()
        window = read_rgb(target.fbo, SIZE) @ LUMA
        drawn = list(app.looks.current.painter.drawn)
        app.recorder.stop()
    finally:
        app.release()
        target.close()
    return window, _decoded(video, SIZE)[-1] @ LUMA, drawn


def _answer_top(drawn) -> float:
    return min(box[1] for part, box, _ in drawn if part == "answer")


def _mask(drawn, parts) -> np.ndarray:
    mask = np.zeros(SIZE[::-1], bool)
    for part, (left, top, right, bottom), _ in drawn:
        if part in parts:
            mask[max(0, int(top)) : int(bottom) + 1, max(0, int(left)) : int(right) + 1] = True
    return mask


def test_a_recording_from_the_window_has_none_of_its_chrome(tmp_path):
    """The window shows the REC label, the HUD, a notice and the prompt box; the video it
    records has none of their pixels, and the rest of the picture is the window's."""
    window, recorded, drawn = _window_and_recording("window", tmp_path / "clean.mp4")
    parts = {part for part, _, _ in drawn}
    assert {"rec", "hud", "notices", "prompt box"} <= parts, parts
    apart = np.abs(window - recorded)
    outside = ~_mask(drawn, OPERATOR)
    assert apart[outside].max() < CODEC  # the same picture but for the chrome
    for part in ("rec", "hud", "notices", "prompt box"):
        inside = apart[_mask(drawn, {part})]
        print(part, "mean luma apart", inside.mean())
        assert inside.mean() > 10, part  # drawn on the window, not in the recording


def test_the_blackout_hides_the_operator_s_chrome_too(tmp_path):
    """B fades the window to black, the chrome drawn after the recording with it."""
    window, recorded, drawn = _window_and_recording("window", tmp_path / "dark.mp4", dark=True)
    assert {"rec", "hud", "notices", "prompt box"} <= {part for part, _, _ in drawn}
    assert window.max() < 1 and recorded.max() < CODEC, (window.max(), recorded.max())


def test_with_chrome_the_recording_is_the_window(tmp_path):
    """`--chrome`: the same frame records the operator's chrome too (a screen capture)."""
    window, recorded, drawn = _window_and_recording("recorded", tmp_path / "chrome.mp4")
    assert {"rec", "hud", "notices", "prompt box"} <= {part for part, _, _ in drawn}
    assert np.abs(window - recorded).max() < CODEC


def test_a_clean_window_shows_no_chrome_and_logs_its_notices(tmp_path, caplog):
    """`run --clean`: no REC, prompt box, HUD or notice drawn (its picture is its recording's),
    the keys' typing still held; the notices go to the log, which stderr shows."""
    with caplog.at_level(logging.INFO, logger=NOTICES):
        window, recorded, drawn = _window_and_recording("none", tmp_path / "audience.mp4")
    assert not OPERATOR & {part for part, _, _ in drawn}, drawn
    # no room kept for a prompt box nobody sees: the answer lower than over the open box
    _, _, operators = _window_and_recording("window", tmp_path / "operator.mp4")
    room = Room.of(SIZE, load_settings().venue)
    lower = _answer_top(drawn) - _answer_top(operators)
    assert lower >= 2 * room.type(PROMPT_SIZE), lower
    assert np.abs(window - recorded).max() < CODEC
    said = [r.getMessage() for r in caplog.records if r.name == NOTICES]  # none of the window's
    assert NOTICE in said and f"recording {tmp_path / 'audience.mp4'}" in said, said


def test_the_window_s_notices_are_not_logged_as_unseen(tmp_path, caplog):
    """A window that shows its notices does not write them to stderr too."""
    with caplog.at_level(logging.INFO, logger=NOTICES):
        _window_and_recording("window", tmp_path / "window.mp4")
    assert not [r for r in caplog.records if r.name == NOTICES]


RENDER = (640, 360)


@pytest.fixture(scope="module")
def described_trace(tmp_path_factory):
    """A made-up run with its model's config: the render says a note as it starts (the
    architecture is described from the config alone)."""
    path = tmp_path_factory.mktemp("clean") / "run.npz"
    config = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
              "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
              "vocab_size": 100}  # fmt: skip
    write_trace(path, _synthetic_run(12), {"model": "tiny", "prompt": "a run",
                                           "model_config": config})  # fmt: skip
    return path


def _render(trace, out, *extra):
    """Frames 7 (mid-answer: "thinking") and the last ("done"), in luma, and stderr."""
    done = neuroweb("render", "--trace", str(trace), "--out", str(out), "--size",
                    f"{RENDER[0]}x{RENDER[1]}", "--fps", "10", "--token-rate", "20",
                    "--no-audio", "--processes", "1", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames = _decoded(out, RENDER) @ LUMA
    return frames[7], frames[-1], done.stderr


def test_a_render_is_clean_unless_asked_for_its_chrome(described_trace, tmp_path):
    """By default no REC label, Ask box or notice in the video, the note written to stderr;
    `render --chrome` draws the REC label left of "thinking", the note on the picture and,
    once the answer is done, the Ask box. Elsewhere the two are the same picture."""
    clean, clean_done, said = _render(described_trace, tmp_path / "clean.mp4")
    chrome, chrome_done, said_chrome = _render(described_trace, tmp_path / "chrome.mp4",
                                               "--chrome")  # fmt: skip
    assert "neuroweb: described from the model's config alone" in said, said
    assert said.count("saved") == 1, said  # once, by the command line
    assert "described from" not in said_chrome, said_chrome  # on the picture instead
    room = Room.of(RENDER, load_settings().venue)
    title = slice(int(room.top), int(room.top + 1.5 * room.type(0.032)))
    band = (np.abs(chrome - clean)[title] > 48).nonzero()[1]  # the columns that differ
    assert band.size > 20 and band.min() > RENDER[0] / 2, band  # REC, at the title's right
    rec = slice(int(band.min()), int(band.max()) + 1)
    assert chrome[title, rec].sum() > clean[title, rec].sum() + 20 * 255  # drawn, not taken
    left = slice(0, RENDER[0] // 2)  # the answer, the same
    assert np.abs(chrome[int(0.55 * RENDER[1]) : int(room.bottom), left]
                  - clean[int(0.55 * RENDER[1]) : int(room.bottom), left]).max() < CODEC
    foot = slice(int(room.bottom - 2 * room.type(0.034)), int(room.bottom))  # the Ask box
    wide = (np.abs(chrome_done - clean_done)[foot] > 48).nonzero()[1]
    assert wide.size and wide.max() - wide.min() > 0.8 * room.width, wide


def test_clean_and_chrome_together_are_refused():
    _assert_user_error(neuroweb("run", "--clean", "--chrome"), "not allowed with argument")
