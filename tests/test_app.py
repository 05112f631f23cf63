"""The render loop's behaviour with a real model stream and real GL (offscreen): pause and step,
recording started and broken mid-run, temperature for the next answer."""

import pytest

from visualizer.clock import FixedStepClock
from visualizer.config import load_settings
from visualizer.model.stream import ModelStream
from visualizer.render.app import App
from visualizer.render.context import HeadlessTarget
from visualizer.render.controls import Command

MAX_FRAMES = 3000  # a bound, not a timing


@pytest.fixture
def app(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("default", {
        "model": {"name": str(tiny_llama_dir), "threads": 1},
        "generation": {"max_tokens": 40, "temperature": 0.0},
    })  # fmt: skip
    target = HeadlessTarget((320, 180))
    with ModelStream(settings) as stream:
        application = App(settings, target, stream, FixedStepClock(30), adaptive=False)
        yield application
        application.release()
    target.close()


def run_until(app: App, done) -> None:
    for _ in range(MAX_FRAMES):
        if done():
            return
        app.frame()
    raise AssertionError(f"not reached; status {app.status}")


def test_pause_holds_tokens_and_right_steps_one(app):
    app.execute(Command("generate", "Count to ten"))
    run_until(app, lambda: app.scene.tokens_seen > 0)
    app.execute(Command("pause"))
    seen = app.scene.tokens_seen
    run_until(app, lambda: len(app.pending) >= 3)  # the model goes on; the screen holds still
    assert app.scene.tokens_seen == seen
    app.execute(Command("step"))
    assert app.scene.tokens_seen == seen + 1
    app.execute(Command("pause"))  # resume: everything that arrived is shown
    app.frame()
    assert not app.pending and app.scene.tokens_seen > seen + 1


def test_a_dead_ffmpeg_stops_the_recording_and_the_demo_goes_on(app, tmp_path):
    app.execute(Command("generate", "Hello"))
    app.execute(Command("record"))
    assert app.recording is not None
    for _ in range(5):
        app.frame()
    process = app.recording._recorder._process
    process.kill()
    process.wait()
    run_until(app, lambda: app.recording is None)
    assert any("recording failed" in text for _, text in app.notices)
    before = app.clock.frames
    for _ in range(3):
        app.frame()
    assert app.clock.frames == before + 3 and app.running
    assert not list(tmp_path.glob("*.mp4"))  # nothing half-written is left


def test_recording_with_r_and_stopping_it_keeps_a_playable_file(app, tmp_path):
    import imageio_ffmpeg

    app.execute(Command("record"))
    for _ in range(12):
        app.frame()
    app.execute(Command("record"))
    videos = list(tmp_path.glob("neuroweb-*.mp4"))
    assert len(videos) == 1 and app.last_recording == videos[0]
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(videos[0]))
    assert frames == 12  # fixed step: one video frame per drawn frame, none lost in the ring


def test_temperature_keys_apply_to_the_next_answer(app):
    app.execute(Command("temperature", 0.1))
    app.execute(Command("temperature", 0.1))
    assert app.gen.temperature == pytest.approx(0.2)
    app.execute(Command("temperature", -5))
    assert app.gen.temperature == 0.0


def test_a_live_recording_keeps_real_time_whatever_the_frame_rate(tmp_path):
    """A 20 fps window recorded at 30 fps: frames are repeated so 0.95 s stays 0.95 s."""
    import imageio_ffmpeg

    from visualizer.config import RecordSettings
    from visualizer.record.session import RecordingSession

    target = HeadlessTarget((64, 36))
    try:
        path = tmp_path / "live.mp4"
        session = RecordingSession(target.ctx, path, (64, 36), RecordSettings(fps=30),
                                   realtime=True, now=10.0)  # fmt: skip
        for i in range(20):  # drawn at 10.00, 10.05, ... 10.95 s
            target.fbo.clear(i / 20, 0, 0, 1)
            assert session.capture(target.fbo, 10.0 + i * 0.05) is None
        assert session.close() == path
    finally:
        target.close()
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames == 29  # video frames at 0, 1/30, ... ≤ 0.95 s
