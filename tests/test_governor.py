"""The governor: under load it lowers the render scale to 0.5, then the detail, then the scale,
and when the load goes it raises them back in reverse; a fixed-step render is never governed."""

from visualizer.clock import RealClock
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.render.app import App
from visualizer.render.governor import (
    DETAIL_MIN,
    LOWER_ABOVE,
    PREFERRED_SCALE,
    REMEMBER_FRAMES,
    SETTLE_FRAMES,
    SHARP_SLACK,
    Governor,
)
from visualizer.sources.local import LocalSource


def _frames(governor: Governor, seconds: float, count: int) -> list[tuple[float, float]]:
    seen = []
    for _ in range(count):
        governor.record(seconds)
        seen.append((governor.scale, governor.detail))
    return seen


def test_scale_detail_then_scale_go_down_under_load_and_come_back_in_reverse():
    governor = Governor(30, 0.3, 1.0)
    heavy = _frames(governor, 2 / 30, 40 * SETTLE_FRAMES)
    first_detail_drop = next(n for n, (_, d) in enumerate(heavy) if d < 1.0)
    assert heavy[first_detail_drop - 1][0] == PREFERRED_SCALE  # the scale goes first, to 0.5
    first_low_scale = next(n for n, (s, _) in enumerate(heavy) if s < PREFERRED_SCALE)
    assert heavy[first_low_scale - 1][1] == DETAIL_MIN  # below it, only once detail is down
    assert [s for s, _ in heavy] == sorted((s for s, _ in heavy), reverse=True)
    assert [d for _, d in heavy] == sorted((d for _, d in heavy), reverse=True)
    assert heavy[-1] == (0.3, DETAIL_MIN)
    light = _frames(governor, 0.5 / 30, 40 * SETTLE_FRAMES)
    first_detail_rise = next(n for n, (_, d) in enumerate(light) if d > DETAIL_MIN)
    assert light[first_detail_rise - 1][0] == PREFERRED_SCALE  # the scale back to 0.5 first
    first_high_scale = next(n for n, (s, _) in enumerate(light) if s > PREFERRED_SCALE)
    assert light[first_high_scale - 1][1] == 1.0
    assert light[-1] == (1.0, 1.0)
    steady = _frames(governor, 1.05 / 30, 10 * SETTLE_FRAMES)  # within its margin: left alone
    assert set(steady) == {(1.0, 1.0)}


def test_from_its_floor_it_climbs_to_the_dearest_setting_that_fits_and_stays():
    """Frames of mostly fixed cost (a CPU renderer's): 0.9 of the budget at the floor, 1.2 of
    it above scale 0.5. It climbs whenever frames fit, settles at 0.5, and tries the step it
    had to leave only once per REMEMBER_FRAMES."""
    governor = Governor(30, 0.3, 1.0)
    _frames(governor, 2 / 30, 40 * SETTLE_FRAMES)  # a slow start (the model loading)
    assert (governor.scale, governor.detail) == (0.3, DETAIL_MIN)
    seen = []
    for _ in range(3 * REMEMBER_FRAMES):
        governor.record((0.9 if governor.scale <= 0.5 + 1e-6 else 1.2) / 30)
        seen.append(governor.scale)
    assert seen[-1] == 0.5 and max(seen) == 0.55 and governor.detail == 1.0
    tries = sum(1 for a, b in zip(seen, seen[1:], strict=False) if (a, b) == (0.5, 0.55))
    assert tries <= 3


def test_under_the_preferred_scale_frames_may_run_a_little_over_budget():
    """At 1.15 budgets a frame the scale goes to 0.5 and the detail to its floor, and no further
    (at 1.3 it goes on to the floor); at 1.05 it climbs back to 0.5 and no higher."""
    budget = 1 / 60
    assert LOWER_ABOVE * SHARP_SLACK > 1.15 and SHARP_SLACK > 1.05
    governor = Governor(60, 0.3, 1.0)
    seen = _frames(governor, 1.15 * budget, 60 * SETTLE_FRAMES)
    assert seen[-1] == (PREFERRED_SCALE, DETAIL_MIN)
    assert min(s for s, _ in seen) == PREFERRED_SCALE
    _frames(governor, 1.3 * budget, 40 * SETTLE_FRAMES)
    assert (governor.scale, governor.detail) == (0.3, DETAIL_MIN)
    back = _frames(governor, 1.05 * budget, 60 * SETTLE_FRAMES)
    assert back[-1] == (PREFERRED_SCALE, DETAIL_MIN)
    assert max(s for s, _ in back) == PREFERRED_SCALE


def test_a_fixed_step_governor_only_measures():
    governor = Governor(30, 0.3, 1.0, adaptive=False)
    assert set(_frames(governor, 1.0, 10 * SETTLE_FRAMES)) == {(1.0, 1.0)}
    assert governor.stats()[0] == 1.0


def test_the_live_window_lowers_its_scale_under_real_load_and_raises_it_after(tiny_llama_dir):
    """A real App drawing with llvmpipe, asked for 240 fps (no CPU renderer gives that at
    640×360): its measured frames lower the scale; given a budget it can meet, it climbs
    back."""
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
