"""Flash and pattern safety sized for the venue: 10° windows from the nearest viewer, a smooth
fade that is no flash, and regular stripes found by the analyser and softened by the limiter."""

import functools
import math

import moderngl
import numpy as np
import pytest

from visualizer.config import load_settings
from visualizer.safety.flashes import FlashAnalyser, window_side

FPS = 30
W, H = 320, 180
_Y, _X = np.mgrid[0:H, 0:W]


def _report(frames, nearest_viewer: float = 1.0):
    analyser = FlashAnalyser(FPS, nearest_viewer)
    for frame in frames:
        analyser.add(frame)
    return analyser.report()


def _grey(levels: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(levels, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _stripes(period: float = 8, angle: float = 0, left: float = 0.5) -> np.ndarray:
    """Black and white bars `period` pixels apart at `angle` degrees over the left `left` of a
    dark grey frame."""
    along = _X * math.cos(math.radians(angle)) + _Y * math.sin(math.radians(angle))
    bars = np.where(np.sin(2 * np.pi * along / period) > 0, 255, 0)
    return _grey(np.where(_X < left * W, bars, 40))


@functools.cache
def _ordinary() -> np.ndarray:
    """A frame like the web's: a dim gradient with soft dots of light scattered over it."""
    rng = np.random.default_rng(3)
    levels = 20 + 40 * _X / W + 0.0 * _Y
    for y, x, r in zip(rng.uniform(0, H, 60), rng.uniform(0, W, 60), rng.uniform(1, 6, 60),
                       strict=True):  # fmt: skip
        levels += 200 * np.exp(-((_Y - y) ** 2 + (_X - x) ** 2) / (2 * r * r))
    return _grey(levels)


@pytest.mark.parametrize(("preset", "windows", "cells"), [
    ("default", (10, 6), (20, 11)), ("talk", (7, 4), (14, 8)), ("kiosk", (10, 6), (20, 11)),
    ("glitch", (10, 6), (20, 11)), ("minimal", (10, 6), (20, 11)),
    ("architecture", (10, 6), (20, 11)),
])  # fmt: skip
def test_the_windows_subtend_10_degrees_for_the_nearest_viewer(preset, windows, cells):
    """2 d tan 5° of the height: at a talk's 1.5 screen heights a quarter of the height and
    about a sixth of a 16:9 width; at 1080p the limiter's pattern guard works on those windows,
    its flash cells are half of one each way."""
    from visualizer.safety import limiter

    nearest = load_settings(preset).venue.nearest_viewer
    assert limiter.windows((1920, 1080), nearest) == windows
    assert limiter.cells((1920, 1080), nearest) == cells
    side = window_side(nearest)
    assert side == pytest.approx(2 * nearest * math.tan(math.radians(5)))
    if preset == "talk":
        assert side == pytest.approx(1 / 4, abs=0.015)  # of the height
        assert side * 9 / 16 == pytest.approx(1 / 6, abs=0.02)  # of the width


def test_a_flicker_flashes_for_the_front_row_it_fills_a_quarter_of_10_degrees_for():
    """An 18 × 24 patch flickering at 5 Hz: half of a 10° window at a desk (1 screen height),
    a fifth of one at a talk's front row (1.5): a flash to the first, none to the second."""

    def patch(k):
        frame = np.zeros((H, W, 3), np.uint8)
        if k // 3 % 2:
            frame[81:99, 150:174] = 255
        return frame

    frames = [patch(k) for k in range(2 * FPS)]
    assert _report(frames, 1.0).general_per_s >= 4
    assert _report(frames, 1.5).general_per_s == 0


def test_a_smooth_fade_on_a_light_background_is_no_flash():
    """A light gradient faded to a third of its light over 0.5 s reaches each window's pixels
    at different frames: one change, no flash (it counted as one a second when two falls in a
    window made a pair); the same gradient flickering at 4 Hz is still counted."""
    light = 170 + 85 * _X / W + 0.0 * _Y
    steps = round(0.5 * FPS)
    fade = [_grey(light * (1 - 0.7 * k / steps)) for k in range(steps + 1)]
    frames = [_grey(light)] * 10 + fade + [fade[-1]] * 20
    assert _report(frames).general_per_s == 0
    back = [_grey(light)] * 10 + fade + fade[::-1] + [_grey(light)] * 20  # down 0.5 s, up 0.5 s
    assert _report(back).general_per_s <= 1
    flicker = [_grey(light * (0.3 if k // 4 % 2 else 1.0)) for k in range(2 * FPS)]
    assert _report(flicker).general_per_s >= 3


@pytest.mark.parametrize("angle", [0, 45, 90])
def test_the_analyser_finds_regular_stripes_that_stay_over_a_quarter(angle):
    """Bars over half the screen for a second: a pattern for a second, not compliant; the same
    for 0.4 s, or over a sixth of the screen, or an ordinary frame, pass."""
    stripes = _stripes(angle=angle)
    long = _report([stripes] * FPS)
    assert long.pattern_s == pytest.approx(1.0) and not long.compliant
    brief = _report([_ordinary()] * 10 + [stripes] * 12 + [_ordinary()] * 10)
    assert brief.pattern_s == pytest.approx(0.4) and brief.compliant
    assert _report([_stripes(angle=angle, left=1 / 6)] * FPS).pattern_s == 0
    assert _report([_ordinary()] * FPS).pattern_s == 0


def test_the_analyser_finds_rows_of_dots():
    """Polka dots (rows of repeated elements) over the whole screen are a regular pattern."""
    dots = np.where((_X % 12 < 6) & (_Y % 12 < 6), 220, 10)
    assert _report([_grey(dots)] * FPS).pattern_s == pytest.approx(1.0)


@pytest.fixture(scope="module")
def gl_target():
    from visualizer.gl.context import HeadlessTarget

    target = HeadlessTarget((W, H))
    yield target
    target.close()


def _through_limiter(frames, target, nearest_viewer: float = 1.0):
    """Each frame uploaded and drawn into the limiter, what it shows read back."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.render.renderer import read_rgb
    from visualizer.safety.limiter import FlashLimiter

    library = ShaderLibrary(target.ctx)
    limiter = FlashLimiter(library, nearest_viewer)
    copy, shown = library.vertex_array("copy", []), []
    try:
        for k, image in enumerate(frames):
            texture = target.ctx.texture((W, H), 3, np.ascontiguousarray(image[::-1]).tobytes())
            limiter.frame(target.fbo, (W, H), k / FPS)
            texture.use(0)
            library.get("copy").set("u_image", 0)
            copy.render(moderngl.TRIANGLES, vertices=3)
            texture.release()
            limiter.finish(target.fbo, k / FPS)
            shown.append(read_rgb(target.fbo, (W, H)).copy())
    finally:
        limiter.release()
        copy.release()
    return shown


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4) @ [0.2126, 0.7152,
                                                                             0.0722]  # fmt: skip


@pytest.mark.parametrize("nearest_viewer", [1.0, 1.5])
def test_the_limiter_softens_lasting_stripes_and_leaves_an_ordinary_frame(gl_target,
                                                                          nearest_viewer):
    """Bars over half the screen for a second: shown, they are softened before half a second is
    out (the analyser finds no pattern), their light kept; the rest of the frame, and an
    ordinary frame throughout, are shown as drawn."""
    stripes = _stripes(period=8, angle=30)
    frames = [_ordinary()] * 5 + [stripes] * FPS
    shown = _through_limiter(frames, gl_target, nearest_viewer)
    report = _report(shown, nearest_viewer)
    assert report.pattern_s <= 0.5 and report.compliant, report
    assert _report(frames, nearest_viewer).pattern_s == pytest.approx(1.0)  # what was drawn
    last, drawn = _luminance(shown[-1]), _luminance(stripes)
    bars = (slice(20, H - 20), slice(20, int(0.4 * W)))  # inside the striped cells
    assert np.percentile(last[bars], 95) - np.percentile(last[bars], 5) < 0.1
    assert last[bars].mean() == pytest.approx(drawn[bars].mean(), abs=0.03)
    assert (shown[-1][:, int(0.75 * W):] == stripes[:, int(0.75 * W):]).all()
    early = shown[5 + round(0.2 * FPS)]  # before the pattern has stayed long enough
    assert (early == stripes).all()
    calm = _through_limiter([_ordinary()] * 20, gl_target, nearest_viewer)
    assert all(np.abs(seen.astype(int) - _ordinary()).max() <= 1 for seen in calm)


def _answer(n: int) -> list:
    """A made-up answer of `n` positions, 6 blocks of 4 heads, with varied values."""
    from tests.synthetic import synthetic_frame

    rng = np.random.default_rng(7)
    layers, heads, width = 6, 4, 32
    frames = []
    for i in range(n):
        attn = rng.random((layers, heads, i + 1)) ** 4
        frames.append(synthetic_frame(
            i, rng.normal(size=(layers + 1, width)), rng.normal(size=(layers, 64)),
            attn / attn.sum(-1, keepdims=True), is_prompt=i < 4, text=f"w{i % 7}",
            entropy=float(rng.uniform(0.5, 3)), mlp_write=rng.normal(size=(layers, width))))
    return frames


@pytest.mark.parametrize("preset", ["default", "talk", "kiosk", "glitch", "minimal",
                                    "architecture"])  # fmt: skip
def test_every_preset_stays_within_the_flash_and_pattern_limits(preset, tmp_path):
    """Three seconds of an answer drawn by each preset through its limiter, analysed for its
    venue's nearest viewer: at most three flashes a second, no lasting regular pattern."""
    from visualizer.clock import FixedStepClock
    from visualizer.gl.context import HeadlessTarget
    from visualizer.handoff import Status
    from visualizer.render.app import App
    from visualizer.render.renderer import read_rgb
    from visualizer.sources.player import TracePlayer

    settings = load_settings(preset)
    clock = FixedStepClock(FPS)
    frames = _answer(40)
    player = TracePlayer(frames, [2 * i / FPS for i in range(len(frames))], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((192, 108))
    app = App(settings, target, player, clock, adaptive=False)
    analyser = FlashAnalyser(FPS, settings.venue.nearest_viewer)
    try:
        for _ in range(3 * FPS):
            app.frame()
            analyser.add(read_rgb(target.fbo, target.size))
    finally:
        app.release()
        target.close()
    report = analyser.report()
    assert report.compliant, report
