"""`neuroweb render` from a trace: exact frame counts, identical frames across runs, presets."""

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from tests.test_cli import _assert_user_error, interrupt_while_recording, neuroweb
from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.model.generate import generate_frames
from visualizer.render.offline import schedule, video_frames
from visualizer.trace import frames_from_trace, read_trace, write_trace

FPS = 10


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory, tiny_llama):
    gen = GenerationSettings(max_tokens=6, temperature=0.0)
    frames = list(generate_frames(tiny_llama, "Hello there", gen, CaptureSettings()))
    path = tmp_path_factory.mktemp("trace") / "run.npz"
    write_trace(path, frames, {"model": "tiny", "prompt": "Hello there"})
    return path, frames


def _framemd5(path) -> list[str]:
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True)
    return [line.split(",")[-1].strip() for line in out.stdout.splitlines()
            if line and not line.startswith("#")]  # fmt: skip


def _render(trace, out, *extra):
    return neuroweb("render", "--trace", str(trace), "--out", str(out), "--size", "160x90",
                    "--fps", str(FPS), *extra)  # fmt: skip


def test_frames_survive_the_trace_round_trip(trace_file):
    path, frames = trace_file
    back = frames_from_trace(read_trace(path))
    assert len(back) == len(frames)
    for a, b in zip(frames, back, strict=True):
        assert (a.index, a.text, a.is_prompt, a.topk_text) == (b.index, b.text, b.is_prompt,
                                                                b.topk_text)  # fmt: skip
        assert np.array_equal(a.attn, b.attn) and np.array_equal(a.hidden, b.hidden)


def test_a_render_is_exact_and_repeatable(trace_file, tmp_path):
    path, frames = trace_file
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for out in (first, second):
        result = _render(path, out, "--token-rate", "4")
        assert result.returncode == 0, result.stderr
    expected = video_frames(schedule(frames, 4.0), FPS)
    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(first))
    assert count == expected and seconds == pytest.approx(expected / FPS, abs=0.05)
    hashes = _framemd5(first)
    assert len(hashes) == expected and hashes == _framemd5(second)
    assert len(set(hashes)) > expected // 2  # it moves


def test_two_presets_give_two_videos(trace_file, tmp_path):
    path, _ = trace_file
    preset = tmp_path / "red.toml"
    preset.write_text('[look]\ncold = "#ff2020"\nbackground = "#200000"\n')
    plain, red = tmp_path / "plain.mp4", tmp_path / "red.mp4"
    assert _render(path, plain).returncode == 0
    assert _render(path, red, "--preset", str(preset)).returncode == 0
    a, b = _framemd5(plain), _framemd5(red)
    assert len(a) == len(b) and a != b


@pytest.mark.parametrize("args,needle", [
    (["--fps", "0"], "--fps: expected a whole number"),
    (["--size", "0x0"], "--size: expected WIDTHxHEIGHT"),
    (["--size", "100000x100"], "--size: expected WIDTHxHEIGHT"),
    (["--token-rate", "0"], "--token-rate: expected a number"),
])  # fmt: skip
def test_bad_render_arguments(trace_file, tmp_path, args, needle):
    out = tmp_path / "x.mp4"
    _assert_user_error(neuroweb("render", "--trace", str(trace_file[0]), "--out", str(out),
                                *args), needle)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_bad_trace_or_output_leaves_nothing(trace_file, tmp_path):
    _assert_user_error(_render(tmp_path / "none.npz", tmp_path / "x.mp4"), "no such trace")
    _assert_user_error(_render(trace_file[0], tmp_path / "no" / "x.mp4"), "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_keeps_what_was_rendered(trace_file, tmp_path):
    out = tmp_path / "cut.mp4"
    partial = tmp_path / ".cut.mp4.partial.mp4"
    status, stderr = interrupt_while_recording(
        partial, "render", "--trace", str(trace_file[0]), "--out", str(out), "--size", "160x90",
        "--fps", "60", "--token-rate", "0.05",
    )  # fmt: skip
    assert status == 130, stderr
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert 0 < count < video_frames(schedule(trace_file[1], 0.05), 60)
    assert not partial.exists()
