"""`neuroweb render` from a trace: exact frame counts, identical frames across runs, presets."""

import json
import signal
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from tests.test_cli import _assert_user_error, interrupt_while_recording, neuroweb, neuroweb_here
from tests.tolerance import drift, eps
from visualizer.config import CaptureSettings, GenerationSettings, SoundSettings
from visualizer.model.generate import generate_frames
from visualizer.render.offline import LEAD_S, TAIL_S, WARM_S, _bounds, fitted, video_frames
from visualizer.sound.synth import RATE, Synth
from visualizer.sources.player import schedule
from visualizer.trace import frames_from_trace, read_trace, write_trace

FPS = 10


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory, tiny_llama):
    gen = GenerationSettings(max_tokens=6, temperature=0.0)
    frames = list(generate_frames(tiny_llama, "Hello there", gen, CaptureSettings()))
    path = tmp_path_factory.mktemp("trace") / "run.npz"
    write_trace(path, frames, {"model": "tiny", "prompt": "Hello there"})
    return path, frames


def _framemd5(path, stream: str = "v") -> list[str]:
    """Per decoded frame of the video ("v") or sound ("a"), its md5."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-map", f"0:{stream}", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [line.split(",")[-1].strip() for line in out.stdout.splitlines()
            if line and not line.startswith("#")]  # fmt: skip


def _sound(path) -> np.ndarray:
    """The decoded soundtrack, [samples, 2] floats at RATE; empty if there is none."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-map", "0:a?", "-f", "f32le", "-ac", "2", "-ar", str(RATE), "-"],
                         capture_output=True)  # fmt: skip
    assert out.returncode == 0 or b"does not contain any stream" in out.stderr, out.stderr
    return np.frombuffer(out.stdout, np.float32).reshape(-1, 2)


def _render(trace, out, *extra):
    return neuroweb("render", "--trace", str(trace), "--out", str(out), "--size", "160x90",
                    "--fps", str(FPS), *extra)  # fmt: skip


def _f16(kept: np.ndarray, exact: np.ndarray) -> bool:
    """A float32 array `exact` as a trace keeps it (float16 where it fits): each value rounded
    to the nearest float16, by at most eps/2 of itself (half a step below float16's normal
    range; float32 values that do not fit are kept exactly)."""
    half_step = float(np.finfo(np.float16).smallest_subnormal) / 2
    rtol = eps(np.float16) / 2
    return kept.shape == exact.shape and np.allclose(kept, exact, rtol=rtol, atol=half_step)


def test_frames_survive_the_trace_round_trip(trace_file):
    path, frames = trace_file
    back = frames_from_trace(read_trace(path))
    assert len(back) == len(frames)
    for a, b in zip(frames, back, strict=True):
        assert (a.index, a.text, a.is_prompt, a.topk_text, a.context_start) == (
            b.index, b.text, b.is_prompt, b.topk_text, b.context_start)  # fmt: skip
        assert np.array_equal(a.topk_ids, b.topk_ids) and np.array_equal(a.topk_probs, b.topk_probs)
        for name in ("hidden", "mlp", "mlp_write", "experts", "attn", "attn_sink"):
            assert _f16(getattr(b, name), getattr(a, name)), name
        assert b.hidden.dtype == np.float16 and not b.hidden.flags.writeable


def test_a_trace_keeps_the_newest_positions_of_attention_and_the_sink(tiny_llama, tmp_path):
    """With a window of 4, row t keeps positions t-3..t (or fewer) and its attention to the
    first position in view, wherever that is; the rest is gone, not renormalised."""
    gen = GenerationSettings(max_tokens=6, temperature=0.0)
    frames = list(generate_frames(tiny_llama, "Hello there, how are you?", gen, CaptureSettings()))
    path = tmp_path / "w.npz"
    write_trace(path, frames, {"model": "tiny"}, window=4)
    trace = read_trace(path)
    assert trace.meta["attention_window"] == 4 and trace.arrays["attn"].shape[-1] == 4
    for a, b in zip(frames, frames_from_trace(trace), strict=True):
        kept = min(4, a.index + 1)
        assert b.attn.shape[-1] == kept and b.attn_first == a.index - kept + 1
        assert _f16(b.attn, a.attn[:, :, -kept:]) and _f16(b.attn_sink, a.attn[:, :, 0])


def test_a_version_2_trace_still_reads(trace_file, tmp_path):
    """A trace written by the last version (float32, attention by absolute column) draws."""
    _, frames = trace_file
    t = len(frames)
    attn = np.zeros((t, *frames[0].attn.shape[:2], t), np.float32)
    for i, f in enumerate(frames):
        attn[i, :, :, : i + 1] = f.attn
    old = tmp_path / "v2.npz"
    np.savez_compressed(
        old, meta=np.array(json.dumps({"format_version": 2, "model": "tiny", "prompt": "hi"})),
        token_ids=np.array([f.token_id for f in frames]), attn=attn,
        token_text=np.array([f.text for f in frames]),
        is_prompt=np.array([f.is_prompt for f in frames]),
        context_start=np.zeros(t, np.int64), hidden=np.stack([f.hidden for f in frames]),
        mlp=np.stack([f.mlp for f in frames]), topk_ids=np.stack([f.topk_ids for f in frames]),
        topk_probs=np.stack([f.topk_probs for f in frames]),
        topk_text=np.array([f.topk_text for f in frames]),
        entropy=np.array([f.entropy for f in frames], np.float32),
    )  # fmt: skip
    back = frames_from_trace(read_trace(old))
    for a, b in zip(frames, back, strict=True):
        assert np.array_equal(a.attn, b.attn) and np.array_equal(a.hidden, b.hidden)
        assert np.array_equal(b.attn_sink, a.attn[:, :, 0]) and not b.mlp_write.any()
    result = _render(old, tmp_path / "v2.mp4", "--token-rate", "8", "--no-audio")
    assert result.returncode == 0, result.stderr


def test_a_render_is_exact_and_repeatable(trace_file, tmp_path):
    path, frames = trace_file
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for out in (first, second):
        result = _render(path, out, "--token-rate", "4")
        assert result.returncode == 0, result.stderr
    expected = video_frames(schedule(frames, 4.0, LEAD_S), FPS)
    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(first))
    assert count == expected and seconds == pytest.approx(expected / FPS, abs=0.05)
    reader = imageio_ffmpeg.read_frames(str(first))
    assert next(reader)["size"] == (160, 90)  # the requested size
    reader.close()
    hashes = _framemd5(first)
    assert len(hashes) == expected and hashes == _framemd5(second)
    assert len(set(hashes)) > expected // 2  # it moves
    sound = _framemd5(first, "a")
    assert sound and sound == _framemd5(second, "a")


def test_the_soundtrack_is_as_long_as_the_video_and_in_sync(trace_file, tmp_path):
    """The mp4's AAC track, decoded, lines up sample for sample with the synthesiser's own output
    for the same schedule: ffmpeg's AAC priming delay is compensated, nothing is shifted."""
    path, frames = trace_file
    out = tmp_path / "v.mp4"
    assert _render(path, out, "--token-rate", "4").returncode == 0
    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    decoded = _sound(out)
    assert len(decoded) / RATE == pytest.approx(seconds, abs=0.01)

    times, synth, parts = schedule(frames, 4.0, LEAD_S), Synth(SoundSettings()), []
    for k in range(count):  # as the renderer cues them: at the first video frame due after
        for j in (
            j for j, t in enumerate(times) if (k - 1) / FPS < t <= k / FPS or (k == 0 and t <= 0)
        ):
            parts.append(synth.render_until(round(k / FPS * RATE)))
            synth.cue(frames[j])
    parts.append(synth.render_until(count * RATE // FPS))
    expected = np.concatenate(parts)
    assert np.abs(expected).max() > 0.05  # not silence
    window = slice(RATE // 2, len(expected) - RATE // 2)
    lags = range(-480, 481)  # ±10 ms
    match = [float(np.dot(expected[window, 0], np.roll(decoded[: len(expected), 0], -lag)[window]))
             for lag in lags]  # fmt: skip
    assert lags[int(np.argmax(match))] == 0
    error = decoded[window] - expected[window]
    assert np.sqrt(np.mean(error**2)) < 0.3 * np.sqrt(np.mean(expected[window] ** 2))


def test_no_audio_leaves_the_sound_out(trace_file, tmp_path):
    out = tmp_path / "silent.mp4"
    assert _render(trace_file[0], out, "--no-audio").returncode == 0
    assert len(_sound(out)) == 0 and len(_framemd5(out)) > 0


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
    (["--processes", "-1"], "--processes: expected a whole number in 0..64"),
])  # fmt: skip
def test_bad_render_arguments(trace_file, tmp_path, args, needle):
    out = tmp_path / "x.mp4"
    _assert_user_error(neuroweb("render", "--trace", str(trace_file[0]), "--out", str(out),
                                *args), needle)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_bad_trace_or_output_leaves_nothing(trace_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _assert_user_error(_render(tmp_path / "none.npz", out / "x.mp4"), "no such trace")
    _assert_user_error(_render(trace_file[0], out / "no" / "x.mp4"), "does not exist")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(trace_file[0].read_bytes()[:5000])
    _assert_user_error(_render(truncated, out / "x.mp4"), f"{truncated}: not a readable trace")
    future = tmp_path / "future.npz"
    with np.load(trace_file[0]) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), "format_version": 99}))
    np.savez(future, **arrays)
    _assert_user_error(_render(future, out / "x.mp4"), "trace format version 99")
    _assert_user_error(_render(trace_file[0], Path("/proc/x.mp4")), "/proc/x.mp4: cannot write")
    _assert_user_error(_render(trace_file[0], truncated / "x.mp4"), "is not a folder")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_keeps_what_was_rendered(trace_file, tmp_path, processes):
    """In one process; in parts, the video from its start (the first part as far as it got),
    and the hidden parts folder goes."""
    out = tmp_path / "cut.mp4"
    partial = (tmp_path / ".cut.mp4.partial.mkv" if processes == 1
               else tmp_path / ".cut.mp4.parts" / ".part0.mp4.partial.mkv")  # fmt: skip
    status, stderr = interrupt_while_recording(
        partial, "render", "--trace", str(trace_file[0]), "--out", str(out), "--size", "160x90",
        "--fps", "60", "--token-rate", "0.05", "--processes", str(processes),
    )  # fmt: skip
    assert status == 130, stderr
    assert f"neuroweb: stopped (Ctrl-C); kept {out}" in stderr
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert 0 < count < video_frames(schedule(trace_file[1], 0.05, LEAD_S), 60) // processes
    assert not partial.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cut.mp4"]


def test_a_crash_leaves_a_playable_video_and_sound(trace_file, tmp_path):
    """Killed outright mid-render (ffmpeg too), the hidden partial files still play (and
    `neuroweb recover` makes an mp4 of them: test_signals)."""
    out = tmp_path / "crash.mp4"
    partial = tmp_path / ".crash.mp4.partial.mkv"
    status, _ = interrupt_while_recording(
        partial, "render", "--trace", str(trace_file[0]), "--out", str(out), "--size", "160x90",
        "--fps", "60", "--token-rate", "0.05", "--processes", "1", sig=signal.SIGKILL,
        min_bytes=30_000,
    )  # fmt: skip
    assert status == -signal.SIGKILL and not out.exists()
    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(partial))
    assert count > 30
    with wave.open(str(tmp_path / ".crash.mp4.partial.wav")) as sound:
        assert sound.getframerate() == RATE and sound.getnframes() / RATE >= seconds - 0.1


def test_a_prompt_renders_the_same_video_twice(tiny_llama_dir, tmp_path):
    """`render --prompt` runs the model itself; sampling is seeded, so frames repeat exactly."""
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for out in videos:
        result = neuroweb_here("render", "--prompt", "Hello", "--model", str(tiny_llama_dir),
                               "--tokens", "5", "--temperature", "0.8", "--seed", "3", "--out",
                               str(out), "--size", "160x90", "--fps", str(FPS))  # fmt: skip
        assert result.returncode == 0, result.stderr
    generated = 5
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(videos[0]))
    assert count == round((LEAD_S + (generated - 1) / 8.0 + TAIL_S) * FPS)
    assert _framemd5(videos[0]) == _framemd5(videos[1])
    assert _framemd5(videos[0], "a") == _framemd5(videos[1], "a")


def test_a_bad_output_is_refused_before_the_model_loads(tmp_path):
    result = neuroweb("render", "--prompt", "Hi", "--model", str(tmp_path / "no-model"),
                      "--out", str(tmp_path / "missing" / "x.mp4"))  # fmt: skip
    _assert_user_error(result, "x.mp4: folder")


def test_a_glitch_render_is_byte_identical_twice(trace_file, tmp_path):
    """The glitch look's cuts, stutters, flashes and colour splits come from the frames and a
    seeded generator, never from the wall clock: two renders decode to the same frames."""
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for out in videos:
        result = _render(trace_file[0], out, "--preset", "glitch")
        assert result.returncode == 0, result.stderr
    video = _framemd5(videos[0])
    assert len(set(video)) > len(video) // 2  # it moves: not a still repeated
    assert video == _framemd5(videos[1])
    assert _framemd5(videos[0], "a") == _framemd5(videos[1], "a")


@pytest.mark.parametrize("total,fps", [(360, 30), (20, 30), (600, 60)])
def test_the_demo_clip_spreads_the_answer_over_the_whole_clip(trace_file, total, fps):
    """The no-display demo's timeline: the prompt at once, the first word after a short lead,
    the words evenly spaced, the last one a short hold before the end, exactly `total` frames."""
    frames = trace_file[1]
    times, frames_out = fitted(frames, fps, total)
    clip_s = total / fps
    words = [t for t, f in zip(times, frames, strict=True) if not f.is_prompt]
    assert frames_out == total and len(words) > 2
    assert all(t == 0 for t, f in zip(times, frames, strict=True) if f.is_prompt)
    # float64 seconds, each a few operations from the clip's length: a few roundings
    few = float(drift(np.float64, 4, clip_s))
    assert words[0] == pytest.approx(min(LEAD_S, 0.1 * clip_s), rel=0, abs=few)
    assert words[-1] == pytest.approx(clip_s - min(TAIL_S, 0.25 * clip_s), rel=0, abs=few)
    assert np.allclose(np.diff(words), np.diff(words)[0], rtol=0, atol=2 * few)  # evenly


def _decoded(path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return np.stack(frames).astype(np.float32)


def test_a_render_in_parts_is_the_render_of_one_process(trace_file, tmp_path):
    """Drawn by three processes, the video has the same frames as drawn by one: identical
    (after decoding) up to the first part's last few, and within the encoder's error from
    there on (x264 ends and starts each part afresh); the soundtrack is the same sound, sample
    for sample; the hidden parts are gone."""
    path, frames = trace_file
    one, three = tmp_path / "one.mp4", tmp_path / "three.mp4"
    for out, n in ((one, "1"), (three, "3")):
        result = _render(path, out, "--token-rate", "2", "--processes", n)
        assert result.returncode == 0, result.stderr
    expected = video_frames(schedule(frames, 2.0, LEAD_S), FPS)
    a, b = _decoded(one), _decoded(three)
    assert len(a) == len(b) == expected
    assert imageio_ffmpeg.count_frames_and_secs(str(three))[0] == expected
    first_seam = _bounds(expected, 3, round(WARM_S * FPS))[1]
    psnr = [10 * np.log10(255**2 / max(np.mean((x - y) ** 2), 1e-9))
            for x, y in zip(a, b, strict=True)]  # fmt: skip
    same = first_seam - 4  # x264 codes the last frames before an end (its 3 B-frames) anew
    print(f"seam at {first_seam}; PSNR from frame {same}: min {min(psnr[same:]):.1f} dB")
    assert np.array_equal(a[:same], b[:same])
    assert min(psnr[same:]) > 35
    assert len(set(_framemd5(three))) > expected // 2  # it moves
    assert _framemd5(one, "a") == _framemd5(three, "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4", "three.mp4"]


def test_a_render_of_a_saved_run_asks_its_frames_once_a_frame(trace_file, monkeypatch):
    """A saved run's frames are at hand on the video's own timeline: the render never waits
    on it as a headless video waits on a model (a render that did spun in the drain until the
    wall clock caught up with its frames, hundreds of times a frame, and two processes drew it no
    sooner than one)."""
    from visualizer.clock import FixedStepClock
    from visualizer.config import load_settings
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.app import App
    from visualizer.render.intake import Intake
    from visualizer.render.offline import Run, paced

    _, frames = trace_file
    asked = []
    receive = Intake.receive
    monkeypatch.setattr(Intake, "receive", lambda self, wait: asked.append(wait) or receive(
        self, wait))  # fmt: skip
    clock = FixedStepClock(30)
    times, total = paced(frames, 30, 4.0)
    target = HeadlessTarget((160, 90))
    try:
        app = App(load_settings("default"), target, Run(frames, "tiny", "Hello there", None)
                  .player(clock, times), clock, adaptive=False, chrome="none")  # fmt: skip
        for _ in range(total):
            app.frame()
        app.release()
    finally:
        target.close()
    assert app.tokens_seen == len(frames)
    assert len(asked) == total and not any(asked)
