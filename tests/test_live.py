"""`neuroweb run` end to end, headless: the offscreen demo, its recording, the no-display
fallback, and one-line refusals of bad arguments."""

import os

import imageio_ffmpeg
import numpy as np
import pygame
import pytest

from tests.test_cli import _assert_user_error, interrupt_while_recording, neuroweb
from tests.test_offline import _sound
from visualizer.sound.synth import RATE


def _no_display() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def _video(path) -> tuple[int, float, tuple[int, int]]:
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    return frames, seconds, tuple(meta["size"])


@pytest.mark.alone
def test_headless_recording_of_the_real_model(tmp_path):
    out, shot = tmp_path / "demo.mp4", tmp_path / "last.png"
    result = neuroweb(
        "run", "--headless", "--frames", "45", "--size", "480x270", "--record", str(out),
        "--screenshot", str(shot), "--prompt", "Name a colour.", "--tokens", "12",
        "--temperature", "0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames, seconds, size = _video(out)
    assert frames == 45 and size == (480, 270)
    assert seconds == pytest.approx(45 / 30, abs=0.05)  # record.fps = 30 in the default preset
    sound = _sound(out)
    assert len(sound) / RATE == pytest.approx(45 / 30, abs=0.03)
    # the video starts with the model's first frames, however long it took to load: sound
    # from its first frames (it spent them on the loading screen, and on a slow machine all 45)
    heard = np.flatnonzero(abs(sound).max(axis=1) > 0.01)
    assert heard.size and heard[0] / RATE < 3 / 30
    assert pygame.image.load(shot).get_size() == (480, 270)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.mp4", "last.png"]


@pytest.mark.parametrize("display,says", [
    (None, "no display"),
    (":999", "the display :999 cannot be opened"),  # SDL would fall back to an invisible window
])  # fmt: skip
def test_without_a_display_run_renders_a_demo_clip(tmp_path, tiny_llama_dir, display, says):
    preset = tmp_path / "small.toml"
    preset.write_text("[window]\nwidth = 320\nheight = 180\n[record]\ndemo_frames = 20\n")
    env = _no_display() | ({"DISPLAY": display} if display else {})
    result = neuroweb("run", "--preset", str(preset), "--model", str(tiny_llama_dir),
                      "--tokens", "4", cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert says in result.stderr
    assert "neuroweb-demo.mp4" in result.stderr and "neuroweb-demo.png" in result.stderr
    frames, _, size = _video(tmp_path / "neuroweb-demo.mp4")
    assert frames == 20 and size == (320, 180)
    assert (tmp_path / "neuroweb-demo.png").stat().st_size > 0


@pytest.mark.parametrize("args,needle", [
    (["--headless", "--size", "0x0"], "--size: expected WIDTHxHEIGHT"),
    (["--headless", "--size", "100000x10"], "--size: expected WIDTHxHEIGHT"),
    (["--headless", "--frames", "0"], "--frames: expected a whole number"),
    (["--frames", "3"], "--frames needs --headless"),
    (["--headless", "--frames", "3", "--record", "/no/such/folder/x.mp4"], "/no/such/folder"),
    (["--watch"], "--watch needs --source"),
    (["--watch", "--source", "127.0.0.1:9", "--prompt", "hi"], "--watch asks for no answers"),
])  # fmt: skip
def test_bad_run_arguments(tmp_path, tiny_llama_dir, args, needle):
    result = neuroweb("run", "--model", str(tiny_llama_dir), *args, cwd=tmp_path)
    _assert_user_error(result, needle)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_finalises_the_recording(tmp_path, tiny_llama_dir):
    """Interrupted mid-run, the video is still complete and playable."""
    out = tmp_path / "cut.mp4"
    partial = tmp_path / ".cut.mp4.partial.mkv"
    status, stderr = interrupt_while_recording(
        partial, "run", "--headless", "--frames", "100000", "--size", "160x90",
        "--record", str(out), "--model", str(tiny_llama_dir), cwd=tmp_path,
    )  # fmt: skip
    assert status == 130, stderr
    assert f"neuroweb: stopped (Ctrl-C); kept {out}" in stderr
    frames, _, size = _video(out)
    assert frames > 0 and size == (160, 90)
    assert not partial.exists()


@pytest.mark.alone
def test_run_can_start_in_the_architecture_scene(tmp_path, tiny_llama_dir):
    shots = {}
    for scene in ("web", "architecture"):
        shots[scene] = tmp_path / f"{scene}.png"
        result = neuroweb("run", "--headless", "--frames", "40", "--size", "320x180",
                          "--scene", scene, "--screenshot", str(shots[scene]), "--prompt", "Hi",
                          "--model", str(tiny_llama_dir), "--tokens", "4",
                          cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
    web, architecture = (pygame.surfarray.array3d(pygame.image.load(p)) for p in shots.values())
    assert abs(web.astype(int) - architecture.astype(int)).mean() > 10
