"""The render loop's behaviour with a real model stream and real GL (offscreen): pause and step,
recording started and broken mid-run, temperature for the next answer."""

import itertools

import numpy as np
import pygame
import pytest
from msgspec import structs

from visualizer.clock import FixedStepClock, RealClock
from visualizer.config import load_settings
from visualizer.features import REST_LEVEL
from visualizer.gl.context import HeadlessTarget
from visualizer.render.app import PASS_SAMPLE, App
from visualizer.render.controls import Command
from visualizer.render.renderer import read_rgb
from visualizer.sound.synth import RATE
from visualizer.sources.local import LocalSource

MAX_FRAMES = 3000  # a bound, not a timing


@pytest.fixture
def app(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("default", {
        "model": {"name": str(tiny_llama_dir), "threads": 1},
        "generation": {"max_tokens": 40, "temperature": 0.0},
    })  # fmt: skip
    target = HeadlessTarget((320, 180))
    with LocalSource(settings) as stream:
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
    run_until(app, lambda: len(app.intake.pending) >= 3)  # the model goes on; the screen holds
    assert app.scene.tokens_seen == seen
    app.execute(Command("step"))
    assert app.scene.tokens_seen == seen + 1
    app.execute(Command("pause"))  # resume: everything that arrived is shown
    app.frame()
    assert not app.intake.pending and app.scene.tokens_seen > seen + 1


def test_a_new_prompt_appears_with_its_answer_not_over_the_last_one(app):
    """The prompt line above the answer changes when the new answer begins on screen (its
    prompt's frames arrive), never over the previous answer while the model reads it."""
    app.execute(Command("generate", "Count to ten"))
    run_until(app, lambda: app.status.state == "finished" and not app.intake.pending)
    assert app.prompt_shown == "Count to ten"
    first = [t.text for t in app.scene.tokens]
    app.execute(Command("generate", "Name three colours"))
    for _ in range(MAX_FRAMES):
        if [t.text for t in app.scene.tokens] != first:
            break
        assert app.prompt_shown == "Count to ten"  # the old answer is still on screen
        app.frame()
    assert app.prompt_shown == "Name three colours"


def test_a_dead_ffmpeg_stops_the_recording_and_the_demo_goes_on(app, tmp_path):
    app.execute(Command("generate", "Hello"))
    app.execute(Command("record"))
    assert app.recorder.active
    for _ in range(5):
        app.frame()
    process = app.recorder.session._recorder._process
    process.kill()
    process.wait()
    run_until(app, lambda: not app.recorder.active)
    assert any("recording failed" in text for _, text in app.hud.notices)
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
    assert len(videos) == 1 and app.recorder.last == videos[0]
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(videos[0]))
    assert frames == 12  # fixed step: one video frame per drawn frame, none lost in the ring


def test_temperature_keys_apply_to_the_next_answer(app):
    app.execute(Command("temperature", 0.1))
    app.execute(Command("temperature", 0.1))
    assert app.intake.gen.temperature == pytest.approx(0.2)
    app.execute(Command("temperature", -5))
    assert app.intake.gen.temperature == 0.0
    # the HUD's number is this one, the next prompt's, and says so (not the answer's on screen)
    app.execute(Command("hud"))
    assert "next prompt: temperature 0.0" in " ".join(app.overlay().hud)


def test_a_live_recording_keeps_real_time_whatever_the_frame_rate(tmp_path):
    """A 20 fps window recorded at 30 fps: frames are repeated so that the video keeps time."""
    import math

    import imageio_ffmpeg
    import numpy as np

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
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    shown = [round(np.frombuffer(f, np.uint8)[0::3].mean() / 255 * 20) for f in reader]
    # video frame k (at k/30 s) shows the latest frame drawn by then; the last, drawn at 0.95 s,
    # first shows at 29/30 s
    assert shown == [math.floor(k / 30 / 0.05 + 1e-9) for k in range(30)]


def test_the_speakers_play_the_answer_and_m_mutes_them(tiny_llama_dir, tmp_path, monkeypatch):
    """Real pygame.mixer output, through SDL's disk driver (it plays into a file, in real time)."""
    import numpy as np

    from visualizer.sound.speakers import CHUNK, DEVICE_BUFFER, Speakers

    played = tmp_path / "speakers.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(played))
    settings = load_settings("default", {"model": {"name": str(tiny_llama_dir), "threads": 1}})
    speakers, why = Speakers.open(settings.sound)
    assert speakers is not None, why
    target = HeadlessTarget((160, 90))
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, RealClock(), adaptive=False, prompt="Hello",
                      speakers=speakers)  # fmt: skip
            run_until(app, lambda: app.scene.tokens_seen >= 3)
            heard_from = played.stat().st_size  # the device played silence while loading
            run_until(app, lambda: played.stat().st_size > heard_from + 4 * RATE // 2)
            heard = np.frombuffer(played.read_bytes()[heard_from:], "<i2")
            assert np.abs(heard).max() > 300  # the answer was heard
            app.execute(Command("mute"))
            assert speakers.muted and app.hud.notices[-1][1] == "sound muted"
            muted_at = played.stat().st_size
            run_until(app, lambda: played.stat().st_size > muted_at + 4 * RATE // 2)
            after = np.frombuffer(played.read_bytes()[muted_at + 4 * DEVICE_BUFFER * 2 :], "<i2")
            assert len(after) > 2 * CHUNK and not after.any()  # silence from the next buffer
            app.execute(Command("mute"))
            assert not speakers.muted
            app.release()
    finally:
        speakers.close()
        target.close()


def test_a_live_recording_carries_the_sound_in_sync(tiny_llama, tmp_path):
    """A token revealed at a drawn frame sounds in the video exactly when the first video frame
    that shows it begins (measured through ffmpeg's AAC encode and decode)."""
    import subprocess

    import imageio_ffmpeg
    import numpy as np

    from visualizer.config import CaptureSettings, GenerationSettings, RecordSettings, SoundSettings
    from visualizer.model.generate import generate_frames
    from visualizer.record.session import RecordingSession
    from visualizer.sound.synth import Synth

    gen = GenerationSettings(max_tokens=2, temperature=0.0)
    token = next(f for f in generate_frames(tiny_llama, "Hi", gen, CaptureSettings())
                 if not f.is_prompt)  # fmt: skip
    target = HeadlessTarget((64, 36))
    path = tmp_path / "live.mp4"
    shown_at = 10.0 + 13 * 0.047  # the token appears with drawn frame 13 (20 fps, uneven)
    try:
        synth = Synth(SoundSettings())
        session = RecordingSession(target.ctx, path, (64, 36), RecordSettings(fps=30),
                                   realtime=True, now=10.0, synth=synth)  # fmt: skip
        for i in range(30):
            now = 10.0 + i * 0.047
            if i == 13:
                session.hear(token, now)
            target.fbo.clear(*(1.0, 1.0, 1.0) if i >= 13 else (0.0, 0.0, 0.0), 1.0)
            assert session.capture(target.fbo, now) is None
        assert session.close() == path
    finally:
        target.close()
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    brightness = [np.frombuffer(f, np.uint8).mean() for f in reader]
    first_white = next(k for k, b in enumerate(brightness) if b > 128) / 30
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
                         capture_output=True, check=True)  # fmt: skip
    sound = np.frombuffer(out.stdout, np.float32)
    onset = np.flatnonzero(np.abs(sound) > 0.005)[0] / RATE
    assert len(sound) / RATE == pytest.approx(len(brightness) / 30, abs=0.03)
    assert shown_at - 10.0 <= first_white < shown_at - 10.0 + 1 / 30  # drawn, then shown
    print(f"first video frame showing the token {first_white:.4f} s, its sound {onset:.4f} s")
    assert abs(onset - first_white) < 0.003


def test_keys_1_and_2_crossfade_between_the_web_and_the_architecture(app):
    import numpy as np

    from visualizer.render.renderer import read_rgb

    app.execute(Command("generate", "Hello"))
    run_until(app, lambda: app.scene.tokens_seen >= 3)
    assert app.architecture is not None and app.architecture.blocks == 3  # from the stream
    web = read_rgb(app.target.fbo, app.target.size)
    app.execute(Command("scene", 1))
    app.frame()
    assert 0 < app.stage.mix < 1  # crossfading
    run_until(app, lambda: app.stage.mix == 1.0)
    architecture = read_rgb(app.target.fbo, app.target.size)
    assert np.abs(architecture.astype(int) - web.astype(int)).mean() > 10
    app.execute(Command("scene", 0))
    run_until(app, lambda: app.stage.mix == 0.0)


def test_an_edited_preset_is_applied_while_running(tiny_llama_dir, tmp_path):
    """Like shaders, the preset reloads when its file changes; a bad edit is named with its
    line and changes nothing."""
    import os

    from visualizer.config import PresetWatch

    preset = tmp_path / "live.toml"
    preset.write_text('[look]\nglow = 0.9\n[sound]\nvolume = 0.8\n')
    watch = PresetWatch(str(preset), {"model": {"name": str(tiny_llama_dir), "threads": 1}})
    settings = load_settings(str(preset), watch.overrides)
    target = HeadlessTarget((160, 90))
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, FixedStepClock(30), adaptive=False, watch=watch)
            app.frame()
            renderer = app.looks.current

            def edit(text: str) -> None:
                preset.write_text(text)
                stamp = preset.stat().st_mtime + 1
                os.utime(preset, (stamp, stamp))
                app.looks._next_poll = 0.0  # as if half a second had passed
                app.frame()

            edit('[look]\nglow = 0.2\nscene = "architecture"\n[sound]\nvolume = 0.3\n')
            assert app.settings.look.glow == 0.2 and app.looks.current is not renderer
            assert app.stage.target == 1.0 and app.hud.notices[-1][1] == "reloaded live.toml"
            edit("[look]\nglow = -3\n")
            assert app.settings.look.glow == 0.2  # unchanged
            assert app.hud.notices[-1][1].startswith(f"{preset}:2: look.glow must be")
            app.release()
    finally:
        target.close()


def test_a_new_look_fades_in_over_the_old_one(tiny_llama_dir):
    """A soft cut: the frame after a look changes still shows the old look, the next ones
    move toward the new one, and after LOOK_FADE_S only the new one is left."""

    from visualizer.render.looks import LOOK_FADE_S
    from visualizer.render.renderer import read_rgb

    settings = load_settings("default", {
        "model": {"name": str(tiny_llama_dir), "threads": 1},
        "safety": {"flash_limit": False},  # the fade itself, not the limiter holding it back
    })  # fmt: skip
    target = HeadlessTarget((160, 90))
    fps = 30
    try:
        with LocalSource(settings) as stream:
            app = App(settings, target, stream, FixedStepClock(fps), adaptive=False)

            def brightness() -> float:
                app.frame()
                return float(read_rgb(target.fbo, target.size).mean())

            while app.status is None or app.status.state != "ready":
                app.frame()  # the web at rest appears with the model: before the cut
            dark = brightness()
            grey = structs.replace(settings.look, background="#b0b0b0")
            app.apply(structs.replace(settings, look=grey))
            fading = [brightness() for _ in range(round(LOOK_FADE_S * fps) + 2)]
            bright = brightness()
            app.release()
    finally:
        target.close()
    assert bright > dark + 60
    assert abs(fading[0] - dark) < 0.1 * (bright - dark)  # the cut starts on the old look
    middle = fading[len(fading) // 2]
    assert dark + 0.3 * (bright - dark) < middle < dark + 0.7 * (bright - dark)
    assert all(b >= a - 1 for a, b in itertools.pairwise(fading))  # steadily, never back
    assert abs(fading[-1] - bright) < 2


def test_the_window_keys_switch_the_lens_and_a_block_s_mlp_from_the_next_token(app):
    """[ ] choose a block, K switches its MLP off from the next token (the frames say so and
    the untouched run comes along), K again switches it back; L shows or hides the lens."""
    from visualizer.render.controls import Controls

    controls = Controls()
    keys = [controls.handle(pygame.event.Event(pygame.TEXTINPUT, text=t), idle=False)[0]
            for t in "]k"]  # fmt: skip
    assert [(c.name, c.value) for c in keys] == [("block", 1), ("ablate", "mlp")]
    app.execute(Command("generate", "Count slowly from one to forty."))
    run_until(app, lambda: app.state == "generating" and app.tokens_seen > 12)
    assert app.overlay().lens and app.scene.lens and not app.scene.changed
    for command in keys:
        app.execute(command)
    assert app.intake.interventions.specs == ("mlp:1",)
    assert "from the next token: mlp:1" in app.overlay().intervene
    run_until(app, lambda: app.scene.changed == ("mlp:1",))
    assert app.scene.ghost is not None and app.overlay().intervene.startswith("changed: mlp:1")
    app.execute(keys[1])  # K again: back on
    run_until(app, lambda: app.scene.changed == () or app.idle)
    app.execute(Command("lens"))
    assert not app.overlay().lens


def test_a_pause_holds_the_newest_frames_and_counts_and_shows_what_it_dropped(tiny_llama):
    """More frames arrive while paused than a pause holds (PENDING_LIMIT): the newest are held,
    the rest are counted, the operator's notice says so (the audience's title says only
    "paused"), and resuming shows the held ones in order."""
    from dataclasses import replace

    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.handoff import Status
    from visualizer.model.generate import generate_frames
    from visualizer.render.intake import PENDING_LIMIT
    from visualizer.render.layers.web_text import state_label
    from visualizer.sources.player import TracePlayer

    run = list(generate_frames(tiny_llama, "Hello", GenerationSettings(max_tokens=8,
                                                                      temperature=0.0),
                               CaptureSettings()))  # fmt: skip
    n_prompt = sum(f.is_prompt for f in run)
    answer = run[n_prompt:]
    extra = 100
    many = PENDING_LIMIT + extra
    frames = [*run[:n_prompt], *(replace(answer[i % len(answer)], index=n_prompt + i)
                                 for i in range(many))]  # fmt: skip
    clock = FixedStepClock(30)
    times = [0.0] * n_prompt + [1.0] * many  # the whole answer arrives at once, at 1 s
    player = TracePlayer(frames, times, lambda: clock.now, Status("generating", model="tiny"))
    target = HeadlessTarget((160, 90))
    app = App(load_settings("default"), target, player.start(), clock, adaptive=False)
    try:
        app.frame()
        app.execute(Command("pause"))
        run_until(app, lambda: clock.now > 1.2)
        assert len(app.intake.pending) == PENDING_LIMIT and app.intake.paused_dropped == extra
        assert app.overlay().paused_dropped == extra
        assert state_label(app.overlay()) == "paused"
        assert app.overlay().notices[-1] == (
            f"paused: → one token, Space goes on (held the newest {PENDING_LIMIT:,}, "
            f"dropped {extra})")  # fmt: skip
        seen = app.scene.tokens_seen
        app.execute(Command("pause"))  # resume
        app.frame()
        assert app.scene.tokens_seen == seen + PENDING_LIMIT
        assert app.scene.newest == frames[-1].index and app.intake.paused_dropped == 0
    finally:
        app.release()
        target.close()


@pytest.mark.alone
def test_a_live_recording_is_as_long_as_the_wall_time_through_a_stall(tiny_llama_dir, tmp_path):
    """The window stalls for 1.5 s (a dragged window, a slow disk): the recording holds the
    last frame through it, so the video is as long as the time it was recording."""
    import time

    import imageio_ffmpeg

    settings = load_settings("default", {"model": {"name": str(tiny_llama_dir), "threads": 1}})
    target = HeadlessTarget((160, 90))
    path = tmp_path / "stall.mp4"
    try:
        with LocalSource(settings) as stream:
            began = time.perf_counter()
            app = App(settings, target, stream, RealClock(), adaptive=False, prompt="Hello",
                      record_to=path)  # fmt: skip
            try:
                while time.perf_counter() - began < 1.0:
                    app.frame()
                time.sleep(1.5)  # no frame drawn
                resumed = time.perf_counter()
                while time.perf_counter() - resumed < 0.5:
                    app.frame()
                wall = time.perf_counter() - began
                app.recorder.stop()
            finally:
                app.release()
    finally:
        target.close()
    _, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert abs(seconds - wall) < 0.25, (seconds, wall)


def test_a_headless_video_starts_with_the_answer_and_never_outruns_the_model(app):
    """A video drawn offscreen on a fixed step: its first frame waits for the model's first
    frames (none are spent on the loading screen), and while the model answers, the video's
    time never runs ahead of the wall time, so its tokens come at the model's own pace."""
    import time

    step = app.clock.step
    app.execute(Command("generate", "Count to ten"))
    app.frame()
    assert app.scene.tokens_seen > 0  # the prompt's frames, in the first frame
    video, wall = app.video.paced_from  # the video's time and the wall time as they came
    ahead, answering = [], 0
    for _ in range(MAX_FRAMES):
        if app.intake.idle:
            break
        app.frame()
        answering += 1
        ahead.append((app.clock.now - video) - (time.perf_counter() - wall))
    assert app.intake.idle and answering > 3, answering  # the test saw an answer in progress
    assert max(ahead) <= step, max(ahead)  # each frame waits until it is not ahead


def test_the_hud_times_each_pass_of_a_frame_it_samples(app):
    """With H on, one frame in PASS_SAMPLE is timed pass by pass: the passes that frame ran are
    named with positive times, the HUD shows them, and frames not sampled feed the governor."""
    app.execute(Command("generate", "Count to ten"))
    run_until(app, lambda: app.scene.tokens_seen > 2)
    assert app.passes.medians() == {}  # nothing measured (nor waited for) with the HUD off
    app.execute(Command("hud"))
    app.governor.frame_times.clear()
    for _ in range(4 * PASS_SAMPLE):
        app.frame()
    medians = app.passes.medians()
    assert {"web: 3D", "web: bloom", "web: upscale", "web: text", "present"} <= set(medians)
    assert all(ms > 0 for ms in medians.values())
    assert list(medians.values()) == sorted(medians.values(), reverse=True)
    assert len(app.governor.frame_times) == 4 * PASS_SAMPLE - 4
    lines = app.overlay().hud
    assert any(line.startswith("passes, ms: ") for line in lines)
    assert f"panel draws {app.looks.current.painter.draws}" in "".join(lines)
    assert app.looks.current.painter.draws >= 1


def test_before_the_first_answer_the_model_s_web_is_there_at_rest(app):
    """Once the model is loaded and before any prompt, the window shows its web (a row per
    block and the embedding, nothing lit), not an empty screen."""
    app.frame()
    background = read_rgb(app.target.fbo, app.target.size).astype(int)  # loading
    while app.status is None or app.status.state != "ready":
        app.frame()
    for _ in range(10):
        app.frame()
    assert app.scene.tokens_seen == 0 and app.scene.candidates == ()
    assert app.scene.rows == app.architecture.blocks + 1
    assert np.all(app.scene.level == REST_LEVEL) and not app.scene.hue.any()
    web = read_rgb(app.target.fbo, app.target.size).astype(int)
    w, h = app.target.size
    middle = (slice(0, h // 2), slice(2 * w // 5, 3 * w // 5))  # where the web stands
    assert (web[middle] - background[middle]).max() > 60  # its nodes, lit at rest


def _synthetic_run(n: int) -> list:
    from tests.synthetic import synthetic_frame

    layers, width = 2, 8
    return [synthetic_frame(i, np.ones((layers + 1, width)), np.ones((layers, 16)),
                            np.full((layers, 2, i + 1), 1 / (i + 1)), is_prompt=i < 2)
            for i in range(n)]  # fmt: skip


class _Marked:
    """A source that passes on a trace player's frames marked as `how` says (a kiosk's replay,
    a recorded run, or as if a live model had made them)."""

    name, alive = "marked frames", True

    def __init__(self, player, **how) -> None:
        self.player, self.how = player, how

    def drain(self, timeout: float = 0.0):
        from dataclasses import replace

        return replace(self.player.drain(timeout), **self.how)


@pytest.mark.parametrize("how, said", [
    ({"replay": True, "recorded": False}, "replay (no model tokens: no tok/s)"),
    ({}, "recorded run (no model tokens: no tok/s)"),  # the trace player's own marks
    ({"replay": False, "recorded": False}, "tok/s"),  # a model's: counted
])  # fmt: skip
def test_the_hud_s_tok_s_counts_the_model_s_tokens_not_frames_played_again(how, said):
    """A kiosk replays its last answer while its model loads, and a trace plays a recorded run:
    neither is the model's speed, so the HUD says what they are instead of a rate."""
    from visualizer.handoff import Status
    from visualizer.sources.player import TracePlayer

    frames = _synthetic_run(40)
    clock = FixedStepClock(30)
    player = TracePlayer(frames, [i / 30 for i in range(40)], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((160, 90))
    app = App(load_settings("default"), target, _Marked(player, **how), clock, adaptive=False)
    try:
        for _ in range(45):
            app.frame(drawn=False)
        assert app.scene.tokens_seen == 40
        app.hud.on = True
        line = app.overlay().hud[1]
        if how == {"replay": False, "recorded": False}:
            assert app.intake.tokens_per_second() > 0 and line.split()[1] == "tok/s"
        else:
            assert app.intake.tokens_per_second() == 0.0 and line.startswith(said)
    finally:
        app.release()
        target.close()


def test_a_shader_error_on_screen_is_written_to_the_log_once(monkeypatch):
    """A shader edit that fails to compile is shown on screen every frame, and written to the
    kiosk's log once, when it appears."""
    import logging

    from visualizer.gl.shaders import ShaderError
    from visualizer.handoff import Status
    from visualizer.sources.player import TracePlayer

    records: list[logging.LogRecord] = []
    log = logging.getLogger("test.shader_errors")
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    clock = FixedStepClock(30)
    player = TracePlayer(_synthetic_run(4), [0.0] * 4, lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((160, 90))
    app = App(load_settings("default"), target, player, clock, adaptive=False, log=log)
    try:
        app.frame()  # every program the scene draws with, compiled
        library = app.looks.current.shaders
        name, compiled, compile_now = next(iter(library._files)), set(library._files), (
            library._compile)  # fmt: skip

        def broken(program: str):
            if program not in compiled:
                return compile_now(program)
            raise ShaderError(f"{program}.glsl:3: error: syntax error, unexpected ';'")

        monkeypatch.setattr(library, "_compile", broken)
        for path in library._files[name]:
            library._stamps[path] = -2.0  # as if the file had just been edited
        for _ in range(5):
            app.poll_files(now_or_never=True)
            app.frame()
        assert name in library.errors and library.errors[name] in app.overlay().errors
        logged = [r.getMessage() for r in records]
        assert sorted(logged) == sorted(f"on screen: shader {n}: {e}"
                                        for n, e in library.errors.items())  # fmt: skip
    finally:
        log.removeHandler(handler)
        app.release()
        target.close()


def test_the_keys_and_a_remote_give_commands_by_name_to_one_table(monkeypatch):
    """One dispatcher: every command the keys, the mouse or the window can give is a name in
    commands.COMMANDS (and every name there has a key, but those only a cue or a remote gives),
    and a command given by name, as a cue list or a remote gives it, does what its key does on a
    running app."""
    from pathlib import Path

    from visualizer.cues import Cue, Show
    from visualizer.errors import UserError
    from visualizer.handoff import Status
    from visualizer.render import controls
    from visualizer.render.commands import COMMANDS
    from visualizer.sources.player import TracePlayer

    given = set(controls.LETTER_COMMANDS.values()) | set(controls.CTRL_KEYS.values())
    hand = controls.Controls()
    for event in (
        *(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0)
          for key in (pygame.K_ESCAPE, pygame.K_RIGHT, pygame.K_UP)),  # fmt: skip
        pygame.event.Event(pygame.TEXTINPUT, text="Hi"),
        pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0),
        pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(0, 0)),
        pygame.event.Event(pygame.MOUSEMOTION, rel=(4, 0), pos=(4, 0), buttons=(1, 0, 0)),
        pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=1),
        pygame.event.Event(pygame.QUIT),
    ):
        given |= {command.name for command in hand.handle(event, idle=True)}
    hand.show = Show(Path("talk.toml"), (Cue(),))  # a talk's cue list: the clicker's keys
    for key in (pygame.K_PAGEDOWN, pygame.K_F5, pygame.K_ESCAPE):
        event = pygame.event.Event(pygame.KEYDOWN, key=key, mod=0)
        given |= {command.name for command in hand.handle(event, idle=True)}
    # a cue's, a remote's
    by_name = {"preset", "intervene", "tokens", "play", "go", "recording", "camera"}
    assert given | by_name == set(COMMANDS)

    clock = FixedStepClock(30)
    player = TracePlayer(_synthetic_run(40), [i / 30 for i in range(40)], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((160, 90))
    app = App(load_settings("default"), target, player, clock, adaptive=False)
    keys: list[pygame.event.Event] = []
    monkeypatch.setattr(target, "events", lambda: [keys.pop()] if keys else [])

    def press(key: int) -> None:  # Ctrl+key: a command whether or not the prompt box is open
        keys.append(pygame.event.Event(pygame.KEYDOWN, key=key, mod=pygame.KMOD_CTRL))
        app.frame()

    try:
        app.frame()
        assert not app.intake.paused
        press(pygame.K_SPACE)
        assert app.intake.paused
        app.execute(Command("pause"))  # by name, as a remote would: resumes
        assert not app.intake.paused
        app.execute(Command("pause"))
        assert app.intake.paused

        press(pygame.K_2)
        assert app.stage.target == 1.0 and app.hud.notices[-1][1] == "scene: architecture"
        app.execute(Command("scene", 0))
        assert app.stage.target == 0.0 and app.hud.notices[-1][1] == "scene: web"
        app.execute(Command("scene", 1))
        assert app.stage.target == 1.0

        press(pygame.K_l)
        assert not app.lens_shown and app.hud.notices[-1][1] == "logit lens off"
        app.execute(Command("lens"))
        assert app.lens_shown and app.hud.notices[-1][1] == "logit lens on"

        with pytest.raises(UserError, match="no command 'dance'"):
            app.execute(Command("dance"))
    finally:
        app.release()
        target.close()
