"""The governor: under load it lowers the render scale (then the detail), and when the load
goes it raises them back, in that order; a fixed-step render is never governed."""

from visualizer.clock import RealClock
from visualizer.config import load_settings
from visualizer.render.app import App
from visualizer.render.context import HeadlessTarget
from visualizer.render.governor import DETAIL_MIN, SETTLE_FRAMES, Governor
from visualizer.sources.local import LocalSource


def _frames(governor: Governor, seconds: float, count: int) -> list[tuple[float, float]]:
    seen = []
    for _ in range(count):
        governor.record(seconds)
        seen.append((governor.scale, governor.detail))
    return seen


def test_scale_then_detail_go_down_under_load_and_come_back_in_reverse():
    governor = Governor(30, 0.3, 1.0)
    heavy = _frames(governor, 2 / 30, 40 * SETTLE_FRAMES)
    scales = [s for s, _ in heavy]
    assert scales == sorted(scales, reverse=True) and scales[-1] == 0.3
    first_detail_drop = next(n for n, (_, d) in enumerate(heavy) if d < 1.0)
    assert heavy[first_detail_drop - 1][0] == 0.3  # detail only once the scale is at its floor
    assert heavy[-1][1] == DETAIL_MIN
    light = _frames(governor, 0.5 / 30, 40 * SETTLE_FRAMES)
    first_scale_rise = next(n for n, (s, _) in enumerate(light) if s > 0.3)
    assert light[first_scale_rise - 1][1] == 1.0  # detail is restored first
    assert light[-1] == (1.0, 1.0)
    steady = _frames(governor, 0.9 / 30, 10 * SETTLE_FRAMES)  # within budget: left alone
    assert set(steady) == {(1.0, 1.0)}


def test_a_fixed_step_governor_only_measures():
    governor = Governor(30, 0.3, 1.0, adaptive=False)
    assert set(_frames(governor, 1.0, 10 * SETTLE_FRAMES)) == {(1.0, 1.0)}
    assert governor.stats()[0] == 1.0


def test_the_live_window_lowers_its_scale_under_real_load_and_raises_it_after(tiny_llama_dir):
    """A real App drawing with llvmpipe, asked for 240 fps (no CPU renderer gives that at
    640×360): its measured frames lower the scale; given a budget it can meet, it climbs back."""
    settings = load_settings("default", {
        "model": {"name": str(tiny_llama_dir), "threads": 1},
        "window": {"target_fps": 240, "software_fps": 240},
    })  # fmt: skip
    target = HeadlessTarget((640, 360), like_a_window=True)
    try:
        with LocalSource(settings) as source:
            app = App(settings, target, source, RealClock(), adaptive=True, prompt="Hello")
            try:
                for _ in range(6 * SETTLE_FRAMES):
                    app.frame()
                lowered = app.governor.scale
                assert lowered < settings.window.max_scale
                app.governor.budget = 10.0  # the load goes: every frame is well inside this
                for _ in range(20 * SETTLE_FRAMES):
                    app.frame()
                    if app.governor.scale == settings.window.max_scale:
                        break
                assert app.governor.scale == settings.window.max_scale > lowered
            finally:
                app.release()
    finally:
        target.close()
