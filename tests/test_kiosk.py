"""Kiosk mode: the playlist, locked controls, and a model process that heals itself."""

import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time

import pygame
import pytest

from tests.test_cli import _assert_user_error, neuroweb
from visualizer.clock import FixedStepClock
from visualizer.config import KioskSettings, load_settings, parse_keys
from visualizer.gl.context import HeadlessTarget
from visualizer.kiosk import Kiosk, Playlist, kiosk_log, kiosk_source
from visualizer.render.app import App
from visualizer.render.controls import Command, Controls
from visualizer.render.video_pace import HEADLESS_LOADING_WAIT_S
from visualizer.soak import KINDS

MAX_FRAMES = 30_000  # a bound, not a timing (a kiosk draws on while the model loads)


def test_the_playlist_plays_every_prompt_each_round_and_turns_the_looks():
    settings = KioskSettings(prompts=("a", "b", "c", "d"), shuffle=True,
                             scenes=("web", "architecture"), presets=("default", "minimal", "x"))
    playlist = Playlist(settings, seed=1)
    rounds = [[playlist.next_prompt() for _ in range(4)] for _ in range(3)]
    assert all(sorted(r) == ["a", "b", "c", "d"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # a fresh order each round
    again = Playlist(settings, seed=1)
    assert [again.next_prompt() for _ in range(4)] == rounds[0]  # seeded: repeatable
    looks = [playlist.next_look() for _ in range(4)]
    assert looks == [("web", "default"), ("architecture", "minimal"), ("web", "x"),
                     ("architecture", "default")]  # fmt: skip
    ordered = Playlist(KioskSettings(prompts=("a", "b"), shuffle=False))
    assert [ordered.next_prompt() for _ in range(4)] == ["a", "b", "a", "b"]


def test_locked_controls_do_nothing_but_the_exit_combination():
    c = Controls(parse_keys("ctrl+shift+q"))
    typed = pygame.event.Event(pygame.TEXTINPUT, text="h")
    q = dict(key=pygame.K_q, unicode="q")
    assert c.handle(typed, idle=True) == [] and c.typing(idle=True) is None
    assert c.handle(pygame.event.Event(pygame.KEYDOWN, mod=0, **q), idle=True) == []
    ctrl_q = pygame.event.Event(pygame.KEYDOWN, mod=pygame.KMOD_LCTRL, **q)
    assert c.handle(ctrl_q, idle=True) == []
    escape = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="")
    assert c.handle(escape, idle=True) == []
    both = pygame.event.Event(pygame.KEYDOWN, mod=pygame.KMOD_LCTRL | pygame.KMOD_LSHIFT, **q)
    assert c.handle(both, idle=True) == [Command("quit")]
    assert parse_keys("ctrl+alt+delete") is None and parse_keys("q") == (frozenset(), "q")


@pytest.fixture
def kiosk(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("kiosk", {
        "model": {"name": str(tiny_llama_dir), "threads": 1},
        "kiosk": {"tokens": 6, "pause_s": 0.0, "scene_s": 0.5,
                  "log_file": str(tmp_path / "kiosk.log"), "prompts": ["one", "two", "three"]},
    })  # fmt: skip
    target = HeadlessTarget((160, 90))
    log = kiosk_log(settings.kiosk)
    source, attract = kiosk_source(settings, log)
    app = App(settings, target, source, FixedStepClock(30), adaptive=False,
              controls=Controls(parse_keys(settings.kiosk.exit_keys)), log=log)  # fmt: skip
    kiosk = Kiosk(app, {"default": load_settings("default"), "minimal": load_settings("minimal")},
                  log, attract)  # fmt: skip
    yield kiosk
    app.release()
    source.stop()
    target.close()


def _run_until(kiosk, done) -> None:
    for _ in range(MAX_FRAMES):
        if done():
            return
        kiosk.app.frame()
        kiosk.tick()
    raise AssertionError(f"not reached: {kiosk.app.status}")


@pytest.mark.alone
def test_the_kiosk_draws_on_while_the_model_loads(kiosk):
    """The render loop never waits on the model; a headless video run waits for its first
    frames instead of drawing empty ones, but a kiosk, even headless (the soak), must not."""
    start = time.perf_counter()
    for _ in range(20):
        kiosk.app.frame()
        kiosk.tick()
    assert kiosk.app.status.state in ("starting", "loading")
    assert time.perf_counter() - start < 20 * HEADLESS_LOADING_WAIT_S / 2


def test_the_kiosk_answers_prompt_after_prompt_and_heals_a_killed_model(kiosk, tmp_path):
    _run_until(kiosk, lambda: kiosk.answers >= 2)
    assert kiosk.app.scene.tokens_seen > 0
    os.kill(kiosk.app.source.source.pid, signal.SIGKILL)  # the model process dies mid-run
    _run_until(kiosk, lambda: kiosk.restarts == 1)
    answers = kiosk.answers
    _run_until(kiosk, lambda: kiosk.answers >= answers + 2)  # and the show goes on
    assert kiosk.app.running and kiosk.app.source.source.alive
    log = (tmp_path / "kiosk.log").read_text()
    assert "restarting the model process: the model" in log
    assert "prompt: " in log and "scene: " in log


def test_every_notice_on_screen_is_also_in_the_kiosk_log(kiosk, tmp_path):
    _run_until(kiosk, lambda: kiosk.answers >= 1)
    app, shown = kiosk.app, set()
    app.execute(Command("lens"))  # the L key: "logit lens off"
    app.execute(Command("screenshot", tmp_path / "poster.png"))  # "saved …"
    app.execute(Command("screenshot", tmp_path / "missing" / "poster.png"))  # "poster failed: …"
    for _ in range(5):
        app.frame()
        shown.update(app.overlay().notices)
    assert len(shown) == 3, shown
    log = (tmp_path / "kiosk.log").read_text()
    for text in shown:
        assert f"on screen: {text}" in log, text


def test_a_stopping_kiosk_starts_no_new_model_process(kiosk):
    """A signal to the process group (systemd stopping the service) ends the model process
    too, in the frame the window is told to quit: the kiosk must not replace it."""
    _run_until(kiosk, lambda: kiosk.answers >= 1)
    kiosk.app.running = False  # what the quit event does
    os.kill(kiosk.app.source.source.pid, signal.SIGKILL)
    for _ in range(MAX_FRAMES):  # until the stream sees it gone (bounded)
        if not kiosk.app.source.source.alive:
            break
        time.sleep(0.01)
    kiosk.tick()
    assert kiosk.restarts == 0


def test_the_last_answer_plays_while_the_model_restarts_and_at_the_next_start(kiosk, tmp_path):
    """The attract loop: a finished answer is replayed (the prompt, then its tokens) while a
    fresh model process loads, and is kept on disk for the next kiosk's start."""
    _run_until(kiosk, lambda: kiosk.answers >= 2)  # the first answer has finished
    kept = kiosk.attract.frames
    assert kept and any(not f.is_prompt for f in kept)
    kiosk.attract.wait_saved(timeout=10)
    os.kill(kiosk.app.source.source.pid, signal.SIGKILL)
    _run_until(kiosk, lambda: kiosk.restarts == 1)
    assert kiosk.app.scene.tokens_seen == 0  # a fresh scene for the fresh process
    replayed, prompts = 0, set()
    for _ in range(MAX_FRAMES):  # until the new process is ready: the old answer plays
        kiosk.app.frame()
        kiosk.tick()
        if kiosk.app.status.state not in ("starting", "loading"):
            break
        replayed = max(replayed, kiosk.app.scene.tokens_seen)
        prompts.add(kiosk.app.prompt_shown)
        if kiosk.app.scene.tokens_seen:  # marked as a replay, never passed off as live
            assert kiosk.app.overlay().replay
    assert replayed > sum(f.is_prompt for f in kept)  # the prompt and some of the answer
    assert prompts == {kiosk.attract.prompt}
    asked = kiosk.answers
    _run_until(kiosk, lambda: kiosk.answers > asked)  # the fresh model's first prompt
    _run_until(kiosk, lambda: kiosk.app.status.state == "finished" and not kiosk.app.intake.pending)
    assert not kiosk.app.overlay().replay  # the model's own answer: live again

    from visualizer.attract import Attract

    again = Attract(tmp_path / "neuroweb-attract.npz", kiosk.app.settings.model.name, kiosk.log)
    assert [f.token_id for f in again.frames] == [f.token_id for f in kept]
    assert not Attract(tmp_path / "neuroweb-attract.npz", "another-model", kiosk.log).frames


def test_a_stalled_answer_restarts_the_model(kiosk):
    _run_until(kiosk, lambda: kiosk.app.status.state == "generating")
    kiosk._last_token -= 10 * kiosk.settings.stall_s  # as if nothing had come for long
    kiosk.tick()
    assert kiosk.restarts == 1
    _run_until(kiosk, lambda: kiosk.app.scene.tokens_seen > 0)


def test_a_bad_kiosk_config_stops_it_at_the_start(tmp_path):
    config = tmp_path / "k.toml"
    config.write_text('[kiosk]\npresets = ["default", "nope"]\n')
    _assert_user_error(neuroweb("kiosk", "--config", str(config)), "nope.toml: no such preset")
    config.write_text('[kiosk]\nscenes = ["web", "tower"]\n')
    _assert_user_error(neuroweb("kiosk", "--config", str(config)), f"{config}:2: kiosk.scenes")


@pytest.mark.alone
def test_a_short_soak_survives_every_injected_fault(tiny_llama_dir):
    """The CI-sized soak: 18 s, a fault every 4 s (model exception, killed ffmpeg,
    corrupted preset, in turn); `neuroweb soak` with longer --minutes is the real thing."""
    result = neuroweb("soak", "--minutes", "0.3", "--inject-faults", "--fault-every", "4",
                      "--model", str(tiny_llama_dir), timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["crashes"] == 0 and report["faults_injected"] >= 3
    assert report["faults_survived"] >= report["faults_injected"] - 1  # the last may be fresh
    assert "stuck" not in report
    assert report["restarts"] >= 1 and report["answers"] > 5 and report["frames"] > 100
    assert report["longest_restart_frame_ms"] > 0 and report["longest_reload_s"] > 0  # measured
    # its own C heap beside its RSS, a minute for a minute, so that growth can be placed
    heap, floors = report["heap_in_use_mb_by_minute"], report["rss_floor_mb_by_minute"]
    assert len(heap) == len(floors) == len(report["heap_free_mb_by_minute"])
    assert all(0 < used < floor for used, floor in zip(heap, floors, strict=True)), report


@pytest.mark.alone
def test_a_short_served_soak_survives_poisonous_requests(tiny_llama_dir):
    """`soak --served`: the model in a `neuroweb serve` child, the kiosk its client; the
    model's fault is a request that once ended the server. It serves on, exits 0 when
    stopped, and both processes' memory floors and their slopes are reported."""
    result = neuroweb("soak", "--minutes", "0.3", "--inject-faults", "--fault-every", "4",
                      "--served", "--model", str(tiny_llama_dir), timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["crashes"] == 0 and report["faults_injected"] >= 2, report
    assert report["server_exit"] == 0 and report["answers"] > 3 and "stuck" not in report
    assert report["faults_survived"] >= report["faults_injected"] - 1
    for memory in (report, report["server"]):
        assert memory["rss_floor_mb_by_minute"] and "rss_slope_ci95_mb_per_h" in memory
        assert memory["heap_in_use_mb_by_minute"][0] > 0  # each process's C heap, placed
        # and its RSS by kind of mapping, once a minute: together the whole RSS but the main
        # stack's and the kernel's few pages
        kinds = memory["rss_mb_by_kind_by_minute"]
        assert set(kinds) == set(KINDS) and kinds["thread stacks"][0] > 0, kinds
        for minute, (floor, peak) in enumerate(zip(memory["rss_floor_mb_by_minute"],
                                                   memory["rss_peak_mb_by_minute"], strict=True)):
            assert floor - 2.0 <= sum(kind[minute] for kind in kinds.values()) <= peak + 0.5


def test_a_lost_sound_device_is_let_go_and_found_again(kiosk, tmp_path, monkeypatch):
    """Real mixer output through SDL's disk driver; the device then fails as an unplugged
    one would (pump raises pygame.error): the show goes on silent, and the kiosk opens the
    device again."""
    import visualizer.kiosk
    from visualizer.sound.speakers import Speakers

    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(tmp_path / "speakers.raw"))
    app = kiosk.app
    app.speakers, _ = Speakers.open(app.settings.sound)
    assert app.speakers is not None
    app.frame()

    def unplugged() -> None:
        raise pygame.error("Audio device has been removed")

    monkeypatch.setattr(app.speakers, "pump", unplugged)
    app.frame()
    assert app.speakers is None and "the sound stopped" in app.hud.notices[-1][1]
    assert app.running
    monkeypatch.setattr(visualizer.kiosk, "SOUND_RETRY_S", 0.0)
    for _ in range(200):  # the search runs off the render thread (bounded: 200 × 20 ms)
        kiosk.tick()
        if app.speakers is not None:
            break
        time.sleep(0.02)
    assert app.speakers is not None
    app.frame()
    app.speakers.close()
    app.speakers = None


_SEARCH_FOR_SOUND = """
import psutil
from visualizer.config import SoundSettings
from visualizer.sound.speakers import Speakers
rss = lambda: psutil.Process().memory_info().rss
for i in range(40):
    speakers, why = Speakers.open(SoundSettings())
    assert speakers is None and "no sound device" in why, why
    if i == 4:
        before = rss()
print(rss() - before)
"""


def test_looking_for_a_sound_card_that_is_not_there_costs_no_memory():
    """A kiosk without a sound card looks for one every half minute; each failed try used to
    leave ALSA's parsed configuration behind (about 100 kB, 3.5 MB over these 35 tries)."""
    if ctypes.util.find_library("asound") is None:
        pytest.fail("the ALSA library is not installed (.ci/run installs it)")
    env = dict(os.environ, SDL_AUDIODRIVER="alsa", AUDIODEV="neuroweb-no-such-card")
    run = subprocess.run([sys.executable, "-c", _SEARCH_FOR_SOUND], env=env, text=True,
                         capture_output=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.split()[-1]) < 1_000_000


def test_the_kiosk_window_runs_fullscreen_until_a_signal(xvfb, tiny_llama_dir, tmp_path):
    """The real thing under Xvfb: fullscreen, answering the playlist, ended by SIGTERM with a
    clean stop in its log."""

    config = tmp_path / "kiosk.toml"
    config.write_text(f'[model]\nname = "{tiny_llama_dir}"\n[kiosk]\ntokens = 6\npause_s = 0.5\n'
                      'scene_s = 2.0\nprompts = ["Hello", "Goodbye"]\n'
                      f'log_file = "{tmp_path / "kiosk.log"}"\n')  # fmt: skip
    run = subprocess.Popen([sys.executable, "-m", "visualizer", "kiosk", "--config", str(config)],
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                           start_new_session=True)  # fmt: skip
    log = tmp_path / "kiosk.log"
    for _ in range(600):  # until it has asked twice (bounded: 600 × 0.1 s)
        if log.exists() and log.read_text().count("prompt: ") >= 2:
            break
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGTERM)  # as systemd stops a unit: the whole process group
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 128 + signal.SIGTERM, stderr
    assert "neuroweb: stopped (SIGTERM)" in stderr and "Traceback" not in stderr
    text = log.read_text()
    assert text.count("prompt: ") >= 2 and "scene: architecture" in text
    assert "kiosk stopping after" in text


def test_the_watchdog_ends_a_frozen_loop_within_frozen_s(tmp_path):
    """A render loop that stops beating (here: one that sleeps, as one stuck in a driver
    would) is ended from the watchdog's thread, after frozen_s and before 2 × frozen_s, with
    the reason in the log; its supervisor starts a fresh one."""
    limit = 1.0
    code = (
        "import logging, sys, time\n"
        "from visualizer.kiosk import Watchdog\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        f"with Watchdog({limit}, logging.getLogger('kiosk')) as dog:\n"
        "    dog.beat()\n"
        "    print(time.monotonic(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    frozen_at = float(run.stdout.readline())
    run.wait(30)
    ended_after = time.monotonic() - frozen_at
    assert run.returncode == 3, run.stderr.read()
    assert "stuck for" in run.stderr.read()
    assert limit <= ended_after < 2 * limit, ended_after
