"""Flash safety: the analyser finds what WCAG 2.3.1 forbids and passes what it allows."""

import numpy as np
import pytest

from visualizer.config import PRESET_DIR
from visualizer.record.ffmpeg import Recorder
from visualizer.safety.flashes import FlashAnalyser, analyse_video

FPS = 30
W, H = 320, 180


def _sequence(colour_at, seconds: float = 2.0) -> list[np.ndarray]:
    """Frames whose pixels come from `colour_at(frame index)`: an [h, w, 3] uint8 image."""
    return [colour_at(k) for k in range(round(seconds * FPS))]


def _fill(rgb) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (H, W, 3)).copy()


def _report(frames):
    analyser = FlashAnalyser(FPS)
    for frame in frames:
        analyser.add(frame)
    return analyser.report()


def test_a_full_screen_flicker_at_5_hz_fails_and_at_2_hz_passes():
    fast = _report(_sequence(lambda k: _fill((255,) * 3 if k // 3 % 2 else (0,) * 3)))
    assert fast.general_per_s >= 4 and not fast.compliant
    slow = _report(_sequence(lambda k: _fill((255,) * 3 if k // 8 % 2 else (0,) * 3)))
    assert slow.general_per_s <= 2 and slow.compliant


def test_small_or_faint_flicker_is_below_the_threshold():
    def small(k):
        frame = _fill((0, 0, 0))
        if k // 2 % 2:
            frame[81:93, 150:162] = 255  # 0.25 % of the screen: a seventh of a 10° window at
        return frame  # a desk (1 screen height: 31 pixels of 180 each way)

    assert _report(_sequence(small)).compliant
    faint = _report(_sequence(lambda k: _fill((60,) * 3 if k // 2 % 2 else (40,) * 3)))
    assert faint.general_per_s == 0
    bright = _report(_sequence(lambda k: _fill((255,) * 3 if k // 2 % 2 else (235,) * 3)))
    assert bright.general_per_s == 0  # both states above 0.8 relative luminance


def test_a_saturated_red_flicker_is_a_red_flash():
    red = _report(_sequence(lambda k: _fill((255, 0, 0) if k // 3 % 2 else (90, 0, 0))))
    assert red.red_per_s >= 4 and not red.compliant
    blue = _report(_sequence(lambda k: _fill((0, 0, 255) if k // 3 % 2 else (0, 0, 90))))
    assert blue.red_per_s == 0


def test_a_video_file_is_analysed_like_its_frames(tmp_path):
    frames = _sequence(lambda k: _fill((255,) * 3 if k // 3 % 2 else (0,) * 3))
    path = tmp_path / "flicker.mp4"
    with Recorder(path, (W, H), FPS) as recorder:
        for frame in frames:  # the recorder takes bottom-up RGBA, as read from GL
            rgba = np.dstack([frame, np.full((H, W), 255, np.uint8)])[::-1]
            recorder.write(np.ascontiguousarray(rgba).tobytes())
    from_file = analyse_video(path)
    assert from_file.frames == len(frames)
    assert from_file.general_per_s == _report(frames).general_per_s


def _through_limiter(frames, ctx_target):
    """Each frame drawn into the limiter, what it shows read back."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.render.renderer import read_rgb
    from visualizer.safety.limiter import FlashLimiter

    limiter = FlashLimiter(ShaderLibrary(ctx_target.ctx))
    shown, amounts = [], []
    try:
        for k, frame in enumerate(frames):
            limiter.frame(ctx_target.fbo, (W, H), k / FPS).clear(*(frame[0, 0] / 255.0), 1.0)
            amounts.append(limiter.finish(ctx_target.fbo, k / FPS))
            shown.append(read_rgb(ctx_target.fbo, (W, H)))
    finally:
        limiter.release()
    return shown, amounts


@pytest.fixture(scope="module")
def gl_target():
    from visualizer.gl.context import HeadlessTarget

    target = HeadlessTarget((W, H))
    yield target
    target.close()


def test_the_limiter_keeps_a_10_hz_strobe_within_three_flashes(gl_target):
    strobe = _sequence(lambda k: _fill((255,) * 3 if k // 2 % 2 else (0,) * 3), seconds=3)
    assert _report(strobe).general_per_s >= 7  # what would have been shown
    shown, amounts = _through_limiter(strobe, gl_target)
    report = _report(shown)
    assert report.compliant and report.general_per_s >= 2, report  # limited, not frozen
    assert min(amounts) < 1.0


def test_the_limiter_holds_red_flashes_too(gl_target):
    red = _sequence(lambda k: _fill((255, 0, 0) if k // 2 % 2 else (150, 0, 0)), seconds=3)
    assert _report(red).red_per_s >= 7
    shown, _ = _through_limiter(red, gl_target)
    assert _report(shown).red_per_s <= 3


def test_the_limiter_lets_slow_changes_through_untouched(gl_target):
    slow = _sequence(lambda k: _fill((255,) * 3 if k // 10 % 2 else (20,) * 3), seconds=3)
    shown, amounts = _through_limiter(slow, gl_target)
    assert amounts == [1.0] * len(slow)
    for seen, drawn in zip(shown, slow, strict=True):
        assert np.abs(seen.astype(int) - drawn.astype(int)).max() <= 1


def test_the_glitch_preset_stays_lively_but_within_three_flashes(tiny_llama, tmp_path):
    """Rendered with the flash limiter the glitch mood still flashes, never more than three
    times a second; with the limiter switched off the analyser catches it strobing."""
    from tests.test_cli import neuroweb
    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.model.generate import generate_frames
    from visualizer.trace import write_trace

    gen = GenerationSettings(max_tokens=32, temperature=1.0, seed=1)  # words, not "\n" × 32
    frames = list(generate_frames(tiny_llama, "Tell me a story", gen, CaptureSettings()))
    trace = tmp_path / "run.npz"
    write_trace(trace, frames, {"model": "tiny", "prompt": "Tell me a story"})
    reports = {}
    for limit in ("true", "false"):
        preset = tmp_path / f"glitch-{limit}.toml"
        text = (PRESET_DIR / "glitch.toml").read_text()
        preset.write_text(text.replace("flash_limit = true", f"flash_limit = {limit}"))
        out = tmp_path / f"glitch-{limit}.mp4"
        result = neuroweb("render", "--trace", str(trace), "--out", str(out), "--size",
                          "320x180", "--fps", "30", "--preset", str(preset), "--no-audio")
        assert result.returncode == 0, result.stderr
        reports[limit] = analyse_video(out)
    assert reports["false"].general_per_s > 3 and not reports["false"].compliant
    assert reports["true"].compliant and reports["true"].general_per_s >= 2


def _strobe(gl_target, period: int) -> tuple[list[bool], list[float], list]:
    """A full-screen black and white strobe through the limiter, changing every `period`
    frames for three seconds: per frame, drawn straight into the target or not, the share of
    the change shown, and the image shown."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.render.renderer import read_rgb
    from visualizer.safety.limiter import FlashLimiter

    limiter = FlashLimiter(ShaderLibrary(gl_target.ctx))
    direct, amounts, shown = [], [], []
    try:
        for k in range(3 * FPS):
            fbo = limiter.frame(gl_target.fbo, (W, H), k / FPS)
            direct.append(fbo is gl_target.fbo)
            fbo.clear(*((1.0,) * 3 if k // period % 2 else (0.0,) * 3), 1.0)
            amounts.append(limiter.finish(gl_target.fbo, k / FPS))
            shown.append(read_rgb(gl_target.fbo, (W, H)))
    finally:
        limiter.release()
    return direct, amounts, shown


def test_a_frame_that_cannot_be_held_back_is_drawn_into_the_target_itself(gl_target):
    """No copy while no cell has spent its budget; its own texture from then on; never held
    back on the target."""
    from visualizer.safety.limiter import BUDGET

    direct, amounts, shown = _strobe(gl_target, 2)  # 7.5 Hz: 15 transitions a second
    whole = [k for k in range(len(amounts)) if amounts[k] == 1.0 and not direct[k]]
    assert whole  # drawn offscreen, then copied onto the target as drawn
    assert all((shown[k] == (255 if k // 2 % 2 else 0)).all() for k in whole)
    # transitions on frames 2, 4, 6 …: the one on frame 2 × BUDGET spends the budget
    last_direct = 2 * BUDGET
    assert direct[: last_direct + 1] == [True] * (last_direct + 1)
    assert not direct[last_direct + 1]
    held = [k for k, amount in enumerate(amounts) if amount < 1.0]
    assert held and not any(direct[k] for k in held)


def test_a_frame_held_back_right_after_a_direct_one_is_mixed_from_what_was_shown(gl_target):
    """A 15 Hz strobe: the frame that spends the budget is drawn straight into the target, and
    the next, held back, moves from it (kept for the purpose: a window's back buffer is gone
    after the swap), not from a stale frame."""
    from visualizer.safety.limiter import BUDGET

    direct, amounts, shown = _strobe(gl_target, 1)
    assert direct[: BUDGET + 1] == [True] * (BUDGET + 1) and not direct[BUDGET + 1]
    assert amounts[BUDGET + 1] < 1.0  # held back
    before, after = shown[BUDGET].astype(int), shown[BUDGET + 1].astype(int)
    assert (before == 255).all()  # frame BUDGET is white; frame BUDGET + 1 asks for black
    assert abs(after - before).max() < 128, after.mean()  # it stays nearer the white shown


def test_a_frame_narrower_than_the_limiter_s_grid_is_measured_everywhere(gl_target):
    """At 64x36 a desk's grid has 80 sub-columns and 44 sub-rows, more than the pixels: each
    sub-cell is measured from its nearest pixel, never from none (a mean of no pixels was NaN,
    and a NaN sub-cell never makes a transition)."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.safety.limiter import SUB, FlashLimiter

    texture = gl_target.ctx.texture((64, 36), 3, bytes([128]) * 64 * 36 * 3)
    fbo = gl_target.ctx.framebuffer(color_attachments=[texture])
    limiter = FlashLimiter(ShaderLibrary(gl_target.ctx))
    try:
        limiter.frame(gl_target.fbo, (64, 36), 0.0)
        subs = limiter._measure(fbo)
    finally:
        limiter.release()
        fbo.release()
        texture.release()
    cols, rows = limiter.cells
    assert subs.shape == (rows * SUB, cols * SUB, 2) and cols * SUB > 64 and rows * SUB > 36
    grey = ((128 / 255 + 0.055) / 1.055) ** 2.4
    assert np.allclose(subs[..., 0], grey, atol=1e-6) and np.all(subs[..., 1] == 0)


def test_the_limiter_measures_each_cell_of_the_frame(gl_target):
    """Luminance and red value per sub-cell, from a frame of flat cells (row 0 the bottom):
    each cell's sub-cells all measure its light."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.safety.limiter import SUB, FlashLimiter, cells

    cols, rows = cells((W, H), 1.0)
    assert (cols, rows) == (20, 11)  # half a 10° window at a desk: 0.0875 of the height
    grey = (np.arange(cols * rows) + 10).reshape(rows, cols)  # a level per cell
    ys, xs = np.arange(H) * rows // H, np.arange(W) * cols // W  # each pixel's cell
    image = grey[ys[:, None], xs[None, :]][..., None].repeat(3, 2)
    image[(ys == 1)[:, None] & (xs == cols - 1)[None, :]] = (230, 20, 10)  # saturated red
    texture = gl_target.ctx.texture((W, H), 3, image.astype(np.uint8).tobytes())
    fbo = gl_target.ctx.framebuffer(color_attachments=[texture])
    limiter = FlashLimiter(ShaderLibrary(gl_target.ctx), nearest_viewer=1.0)
    try:
        limiter.frame(gl_target.fbo, (W, H), 0.0)
        assert limiter.cells == (cols, rows)
        subs = limiter._measure(fbo)  # [rows × SUB, cols × SUB, 2], flat within each cell
        assert subs.shape == (rows * SUB, cols * SUB, 2)
        measured = subs.reshape(rows, SUB, cols, SUB, 2).mean(axis=(1, 3)).reshape(-1, 2)
    finally:
        limiter.release()
        fbo.release()
        texture.release()

    def linear(c):
        c = np.asarray(c) / 255
        return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)

    expected = linear(grey).ravel()
    expected[1 * cols + cols - 1] = linear([230, 20, 10]) @ [0.2126, 0.7152, 0.0722]
    assert np.allclose(measured[:, 0], expected, atol=2e-4)
    red = np.zeros(cols * rows)
    red[1 * cols + cols - 1] = (230 - 20 - 10) / 255 * 320
    assert np.allclose(measured[:, 1], red, atol=0.05)



def test_fine_flashing_light_over_part_of_a_cell_is_held_to_the_limit(gl_target):
    """Specks 4 pixels square over a third of the screen (scattered, not a regular pattern)
    strobing at 7.5 Hz, each by 0.25 of luminance: a window's mean moves by less than STEP
    (0.08), which a limiter that watched cell means let through (7 flashes a second); watched
    by the area that makes a transition, as WCAG counts it (and the analyser), it is held to
    three flashes a second or fewer, and still flashes."""
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.render.renderer import read_rgb
    from visualizer.safety.limiter import FlashLimiter

    limiter = FlashLimiter(ShaderLibrary(gl_target.ctx))
    grey = 137 / 255  # relative luminance 0.25
    specks = np.argwhere(np.random.default_rng(0).random((H // 4, W // 4)) < 1 / 3) * 4
    drawn, shown = [], []
    try:
        for k in range(3 * FPS):
            fbo = limiter.frame(gl_target.fbo, (W, H), k / FPS)
            fbo.clear(0.0, 0.0, 0.0, 1.0)
            for y, x in specks if k // 2 % 2 else ():
                fbo.clear(grey, grey, grey, 1.0, viewport=(int(x), int(y), 4, 4))
            drawn.append(read_rgb(fbo, (W, H)).copy())
            limiter.finish(gl_target.fbo, k / FPS)
            shown.append(read_rgb(gl_target.fbo, (W, H)).copy())
    finally:
        limiter.release()
    assert _report(drawn).general_per_s > 3  # what was drawn strobes
    report = _report(shown)
    assert report.compliant and report.general_per_s >= 2, report
