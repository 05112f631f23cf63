"""SIGTERM and SIGHUP end run, render, trace and kiosk the way Ctrl-C does (the kiosk's case is
in test_kiosk): what was being made is finished and playable, one line says what was kept, and
the exit status is 128 + the signal. A recording cut short by kill -9 is found and recovered by
`neuroweb recover`."""

import re
import signal
import subprocess
import sys
import time
import wave

import imageio_ffmpeg
import pytest

from tests.test_cli import interrupt_while_recording, neuroweb, neuroweb_here
from tests.test_offline import FPS, _sound
from visualizer.sound.synth import RATE
from visualizer.trace import frames_from_trace, read_trace


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory, tiny_llama_dir):
    """A trace whose render takes long enough to be cut: 40 tokens at 60 fps, 0.1 tokens/s."""
    path = tmp_path_factory.mktemp("signals") / "run.npz"
    result = neuroweb_here("trace", "--prompt", "Hello", "--model", str(tiny_llama_dir),
                           "--tokens", "40", "--temperature", "0", "--out", str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def _render_args(trace, out, processes: int = 1) -> list[str]:
    """One process unless asked (the partials are then in `.NAME.parts/`: _partial)."""
    return ["render", "--trace", str(trace), "--out", str(out), "--size", "160x90", "--fps",
            "60", "--token-rate", "0.1", "--processes", str(processes)]  # fmt: skip


def _partial(out, processes: int = 1):
    """Where the recording of `out` is being written: the first part's, when in parts."""
    if processes == 1:
        return out.with_name(f".{out.name}.partial.mkv")
    return out.with_name(f".{out.name}.parts") / ".part0.mp4.partial.mkv"


def _one_stop_line(stderr: str, name: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("neuroweb: stopped")]
    assert len(lines) == 1 and f"stopped ({name})" in lines[0], stderr
    assert "Traceback" not in stderr
    return lines[0]


def _playable(path) -> int:
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames > 0 and seconds > 0
    return frames


def _no_partials(folder) -> None:
    assert not [p.name for p in folder.iterdir() if ".partial." in p.name]


def test_render_under_timeout_keeps_a_playable_video(long_trace, tmp_path):
    """`timeout` sends SIGTERM to the command (here with --preserve-status, to see its own
    exit status)."""
    out = tmp_path / "cut.mp4"
    run = subprocess.run(["timeout", "--preserve-status", "-s", "TERM", "12", sys.executable,
                          "-m", "visualizer", *_render_args(long_trace, out)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 128 + signal.SIGTERM, run.stderr
    assert f"kept {out}" in _one_stop_line(run.stderr, "SIGTERM")
    _playable(out)
    assert len(_sound(out)) > 0
    _no_partials(tmp_path)


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_render_stopped_by_a_signal_to_its_process_group(long_trace, tmp_path, sig, processes):
    """As systemd stops a unit (the whole group); ffmpeg, in a session of its own, is left to
    this process, which finishes the file; the processes drawing parts ignore it and are
    stopped by this one, which keeps the first part."""
    out = tmp_path / "cut.mp4"
    status, stderr = interrupt_while_recording(
        _partial(out, processes), *_render_args(long_trace, out, processes), sig=sig,
        group=True, min_bytes=10_000,
    )  # fmt: skip
    assert status == 128 + sig, stderr
    assert f"kept {out}" in _one_stop_line(stderr, signal.Signals(sig).name)
    _playable(out)
    _no_partials(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["cut.mp4"]


def test_a_headless_run_stopped_by_sigterm_keeps_its_recording(tiny_llama_dir, tmp_path):
    out = tmp_path / "live.mp4"
    status, stderr = interrupt_while_recording(
        tmp_path / ".live.mp4.partial.mkv", "run", "--headless", "--frames", "100000", "--size",
        "160x90", "--record", str(out), "--model", str(tiny_llama_dir), cwd=tmp_path,
        sig=signal.SIGTERM, group=True,
    )  # fmt: skip
    assert status == 128 + signal.SIGTERM, stderr
    assert f"kept {out}" in _one_stop_line(stderr, "SIGTERM")
    _playable(out)
    _no_partials(tmp_path)


@pytest.mark.parametrize(("sig", "said", "group"),
                         [(signal.SIGHUP, "SIGHUP", False), (signal.SIGINT, "Ctrl-C", True)])
def test_a_window_run_stopped_by_its_terminal_keeps_its_recording(xvfb, tiny_llama_dir, tmp_path,
                                                                  sig, said, group):  # fmt: skip
    """A closed terminal sends SIGHUP to the window it started; Ctrl-C in it sends SIGINT to
    the whole foreground process group (the window, its model process and its encoder): either
    quits the window."""
    out = tmp_path / "window.mp4"
    status, stderr = interrupt_while_recording(
        tmp_path / ".window.mp4.partial.mkv", "run", "--record", str(out),
        "--model", str(tiny_llama_dir), "--prompt", "Hello", cwd=tmp_path, sig=sig,
        min_bytes=5_000, group=group,
    )  # fmt: skip
    assert status == 128 + sig, stderr
    assert f"kept {out}" in _one_stop_line(stderr, said)
    _playable(out)
    _no_partials(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_a_trace_stopped_mid_answer_keeps_what_was_made(tmp_path, sig, tiny_llama_dir):
    """Stopped after its 32nd token (at the first tenth of its tokens a log is told of), the
    trace holds every position made so far, and says where it was stopped. SIGHUP takes the
    same handler (signals.stop_like_ctrl_c, set for every command marked like_ctrl_c:
    test_cli_dispatch), and a window's run is stopped by it below. (A tiny model: what is kept
    does not depend on the model, and it makes its first tenth in seconds.)"""
    out = tmp_path / "cut.npz"
    run = subprocess.Popen([sys.executable, "-m", "visualizer", "trace", "--prompt",
                            "Tell me a long story about the sea.", "--tokens", "400", "--out",
                            str(out), "--model", str(tiny_llama_dir)], stderr=subprocess.PIPE,
                           text=True, start_new_session=True)  # fmt: skip
    said = []
    for line in run.stderr:  # every tenth of --tokens says how far it got
        said.append(line)
        counted = re.match(r"generating: (\d+)/", line)
        if counted and int(counted[1]) >= 32:
            break
    run.send_signal(sig)
    _, rest = run.communicate(timeout=120)
    stderr = "".join(said) + rest
    assert run.returncode == 128 + sig, stderr
    assert f"kept {out}" in _one_stop_line(stderr, signal.Signals(sig).name)
    trace = read_trace(out)
    frames, meta = frames_from_trace(trace), trace.meta
    generated = sum(not f.is_prompt for f in frames)
    assert 32 <= generated < 400
    assert meta["n_prompt"] == len(frames) - generated
    assert meta["text"] == "".join(f.text for f in frames)
    assert f"stopped ({signal.Signals(sig).name}) after {len(frames)} positions" in meta["notes"]


def test_recover_makes_the_leftovers_of_a_kill_9_playable(long_trace, tmp_path):
    """kill -9 to the process group and ffmpeg (a power cut) leaves hidden partials; the next
    render in that folder mentions them, and `neuroweb recover` remuxes them into
    NAME.recovered.mp4, video and sound, and removes them."""
    out = tmp_path / "crash.mp4"
    partial = tmp_path / ".crash.mp4.partial.mkv"
    status, _ = interrupt_while_recording(partial, *_render_args(long_trace, out),
                                          sig=signal.SIGKILL, min_bytes=30_000)  # fmt: skip
    assert status == -signal.SIGKILL and not out.exists()
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(partial))
    with wave.open(str(tmp_path / ".crash.mp4.partial.wav")) as sound:
        kept_sound_s = sound.getnframes() / RATE
    assert frames > 30 and kept_sound_s > 0

    later = neuroweb("render", "--trace", str(long_trace), "--out", str(tmp_path / "x.mp4"),
                     "--size", "160x90", "--fps", str(FPS), "--token-rate", "20")  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert "1 unfinished recording(s)" in later.stderr and "crash.mp4" in later.stderr

    result = neuroweb("recover", str(tmp_path))
    recovered = tmp_path / "crash.recovered.mp4"
    assert result.returncode == 0, result.stderr
    assert f"recovered crash.mp4 as {recovered} (video and sound)" in result.stderr
    assert imageio_ffmpeg.count_frames_and_secs(str(recovered))[0] == frames
    assert abs(len(_sound(recovered)) / RATE - kept_sound_s) < 0.1
    _no_partials(tmp_path)
    again = neuroweb("recover", str(tmp_path))
    assert again.returncode == 0 and "no unfinished recordings" in again.stderr


@pytest.mark.parametrize("processes", [1, 2])
def test_recording_again_to_a_crashed_name_recovers_the_old_one_first(long_trace, tmp_path,
                                                                       processes):  # fmt: skip
    """Also after a render in parts: its first part, the video from its start with the sound,
    is what is recovered, and the hidden parts folder goes."""
    out = tmp_path / "take.mp4"
    interrupt_while_recording(_partial(out, processes),
                              *_render_args(long_trace, out, processes), sig=signal.SIGKILL,
                              min_bytes=30_000)  # fmt: skip
    result = neuroweb("render", "--trace", str(long_trace), "--out", str(out), "--size",
                      "160x90", "--fps", str(FPS), "--token-rate", "20")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"an earlier recording to {out} was cut short: recovered as " in result.stderr
    _playable(tmp_path / "take.recovered.mp4")
    assert len(_sound(tmp_path / "take.recovered.mp4")) > 0
    _playable(out)
    _no_partials(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4", "take.recovered.mp4"]


def test_recover_leaves_a_recording_that_is_still_being_made_alone(long_trace, tmp_path):
    out = tmp_path / "busy.mp4"
    partial = tmp_path / ".busy.mp4.partial.mkv"
    run = subprocess.Popen([sys.executable, "-m", "visualizer", *_render_args(long_trace, out)],
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(600):  # until ffmpeg has written something (bounded: 600 × 0.1 s)
            if partial.exists() and partial.stat().st_size > 1000:
                break
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.1)
        result = neuroweb("recover", str(tmp_path))
        assert "no unfinished recordings" in result.stderr and partial.exists()
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
    _playable(out)


def test_recover_of_a_folder_that_is_not_one(tmp_path):
    result = neuroweb("recover", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere: no such folder" in result.stderr
    assert "Traceback" not in result.stderr
