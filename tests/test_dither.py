"""The dither against banding (visualizer/gl/dither.py, shaders/lib/dither.glsl): the web's dark
backdrop drawn through the real passes, recorded by the real recorder, decoded and measured."""

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from visualizer.config import load_settings
from visualizer.features import SceneState
from visualizer.gl.context import HeadlessTarget
from visualizer.gl.dither import blue_noise, levels, read_tile
from visualizer.record.session import RecordingSession
from visualizer.render.camera import Camera
from visualizer.render.layers.layer import Overlay
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer, read_rgb

SIZE = (320, 180)
FRAMES = 4
# nothing but the status line (top left, outside what is measured)
OVERLAY = Overlay("ready", "", 1.0, "m", 6, "", None, False, None, (), (), (), interactive=False)


def test_the_tile_is_blue_noise():
    """Every threshold once (a ramp's levels each get their share of pixels), and almost no
    power at low frequencies, where white noise has its share: the grain is finer than a
    few pixels. The renderer's copy (shaders/lib/blue_noise.pgm) is this tile's levels."""
    tile = blue_noise()
    assert tile.shape == (64, 64)
    ranks = np.sort(tile.ravel() * tile.size - 0.5)
    assert np.allclose(ranks, np.arange(tile.size), atol=1e-3)
    assert np.array_equal(tile, blue_noise.__wrapped__())  # made afresh: the same tile
    assert np.array_equal(read_tile(), levels(tile))  # and the one shipped is that tile

    def low_share(a: np.ndarray) -> float:
        power = np.abs(np.fft.fft2(a - a.mean())) ** 2
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64)))
        return power[(f > 0) & (f < 0.125)].sum() / power.sum()

    white = np.random.default_rng(0).random((64, 64))
    assert low_share(tile) < 0.01 < 0.02 < low_share(white)


def backdrop(tmp_path: Path, pix_fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """The web at rest with its nebula's colours black: the backdrop is the background colour
    times the vignette, a dark radial gradient of about eight levels. Drawn for FRAMES frames
    and recorded as `pix_fmt`; returns the last frame's luma as drawn and as decoded (BT.601
    weights, in 8-bit levels), each [h, w]."""
    settings = load_settings("default", {"look": {"cold": "#000000", "warm": "#000000"},
                                         "record": {"pix_fmt": pix_fmt}})  # fmt: skip
    target = HeadlessTarget(SIZE)
    renderer = Renderer(target.ctx, settings.look, False, PassTimes(target.ctx))
    path = tmp_path / f"{pix_fmt}.mp4"
    session = RecordingSession(target.ctx, path, SIZE, settings.record, False, 0.0)
    scene = SceneState(settings.look)
    try:
        for i in range(FRAMES):
            renderer.draw(target.fbo, SIZE, scene, OVERLAY, Camera(0.0), 1.0 + i / 30)
            assert session.capture(target.fbo, i / 30) is None
        drawn = read_rgb(target.fbo, SIZE).astype(np.float64) @ [0.299, 0.587, 0.114]
        assert session.close() == path
    finally:
        renderer.release()
        target.close()
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-f", "rawvideo", "-pix_fmt", "gray16le", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    decoded = np.frombuffer(out, "<u2").reshape(-1, SIZE[1], SIZE[0])[-1] / 256.0
    return drawn, decoded


def flat_run(luma: np.ndarray, level: float = 1.0) -> float:
    """The mean length, in pixels along a row, of a run of one level (`level`: its size, in
    8-bit levels), away from the edges and the status line. A band is a long run ended by a
    step."""
    h, w = luma.shape
    q = np.round(luma[h // 6 : h * 5 // 6, w // 16 : w * 15 // 16] / level)
    steps = np.count_nonzero(np.diff(q, axis=1))
    return q.size / (steps + q.shape[0])


def test_a_dark_gradient_is_dithered_not_banded_and_h264_keeps_it(tmp_path):
    """Undithered, this gradient is drawn as bands, runs of one level 43 pixels long on
    average (51 once recorded). Dithered, the drawn levels change every 2 pixels, and an 8-bit
    H.264 recording (crf 20, ultrafast) keeps runs of 8."""
    drawn, decoded = backdrop(tmp_path, "yuv420p")
    assert 4 < drawn.mean() < 12 and np.ptp(drawn) >= 4  # dark, and a gradient of levels
    assert flat_run(drawn) < 4
    assert flat_run(decoded) < 20


def test_a_10_bit_recording_is_high_10(tmp_path):
    """record.pix_fmt = "yuv420p10le": H.264 High 10, its levels a quarter of 8 bits' apart,
    and the gradient not banded in them either (runs of 6 pixels; 20 undithered)."""
    _, decoded = backdrop(tmp_path, "yuv420p10le")
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i",
                           str(tmp_path / "yuv420p10le.mp4")],
                          capture_output=True, text=True).stderr  # fmt: skip
    assert "High 10" in info and "yuv420p10le" in info
    assert np.any(decoded * 4 % 4 != 0)  # levels between 8 bits' levels
    assert flat_run(decoded, 0.25) < 12


def test_the_dither_holds_still_so_frames_repeat():
    """The same frame drawn twice is the same bytes (offline renders are compared by md5): the
    dither comes from the pixel's place, not the clock."""
    look = load_settings("default").look
    target = HeadlessTarget(SIZE)
    renderer = Renderer(target.ctx, look, False, PassTimes(target.ctx))
    scene = SceneState(look)
    try:
        images = []
        for _ in range(2):
            renderer.draw(target.fbo, SIZE, scene, OVERLAY, Camera(0.0), 2.0)
            images.append(read_rgb(target.fbo, SIZE).copy())
    finally:
        renderer.release()
        target.close()
    assert np.array_equal(*images)
