"""A talk driven by a presentation clicker, as a speaker drives it: the clicker's keys sent to a
real App (offscreen GL, a real model or a recorded run), the blackout through the flash
analyser, a bad cue file on the command line, and the example talk against SmolLM2."""

import json
from pathlib import Path

import numpy as np
import pygame
import pytest

from tests.test_app import MAX_FRAMES, _synthetic_run
from visualizer.cli import main
from visualizer.clock import FixedStepClock
from visualizer.config import PRESET_DIR, load_settings
from visualizer.cues import load_cues
from visualizer.errors import UserError
from visualizer.gl.context import HeadlessTarget
from visualizer.handoff import Status
from visualizer.interventions import Ablation
from visualizer.render.app import App
from visualizer.render.renderer import read_rgb
from visualizer.safety.flashes import FlashAnalyser
from visualizer.sources.local import LocalSource
from visualizer.sources.player import TracePlayer
from visualizer.trace import write_trace

FPS = 30
TALK = """\
[[cue]]
title = "a prompt"
note = "Say hello."
prompt = "Count to three"
tokens = 6

[[cue]]
note = "Now the parts."
scene = "architecture"

[[cue]]
note = "Block 1's MLP off; its ghost answers beside it."
scene = "web"
ablate = ["mlp:1"]
prompt = "Count to four"
"""


def clicker(key: int, text: str = "") -> list[pygame.event.Event]:
    """What a clicker's button sends: its key, and the text it types (as a keyboard's does)."""
    events = [pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode=text)]
    return events + ([pygame.event.Event(pygame.TEXTINPUT, text=text)] if text else [])


class Keys:
    """The app's target gives these events, one frame's worth each frame."""

    def __init__(self, app: App) -> None:
        self.app, self.queue = app, []
        app.target.events = lambda: self.queue.pop(0) if self.queue else []

    def press(self, key: int, text: str = "") -> None:
        self.queue.append(clicker(key, text))
        self.app.frame()


def _luminance(image: np.ndarray) -> float:
    linear = (image / 255.0) ** 2.2
    return float((linear @ np.array([0.2126, 0.7152, 0.0722])).mean())


def test_blackout_fades_out_and_back_smoothly_with_no_flash():
    """"." (a clicker's blank-screen key) into the empty prompt box, then again 1.5 s later:
    the picture, in a grey look where the analyser sees the change (a cut to black and back
    is a flash to it), fades to black over 0.5 s and back, a few per cent of its light a frame,
    with no flash in the analyser; the answer plays on. Pressed as fast as a hand can, ten
    times a second for two seconds, it stays within the flash limit."""
    clock = FixedStepClock(FPS)
    player = TracePlayer(_synthetic_run(60), [i / FPS for i in range(60)], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((192, 108))
    app = App(load_settings("default", {"look": {"background": "#505860"}}), target, player,
              clock, adaptive=False)  # fmt: skip
    keys, analyser, images = Keys(app), FlashAnalyser(FPS), []
    try:
        for i in range(95):
            if i in (30, 75):
                keys.queue.append(clicker(pygame.K_PERIOD, "."))
            app.frame()
            images.append(read_rgb(target.fbo, target.size).copy())
            analyser.add(images[-1])
        assert app.controls.box is None  # the "." was not typed
        light = [_luminance(image) for image in images]
        before, dark, after = light[29], light[60], light[-1]
        assert dark < 0.001 < 0.05 < before < after * 1.1  # and back (the answer done)
        steps = np.abs(np.diff(light)) / before
        assert steps.max() < 0.2  # smooth: no jump
        assert sum(light[31 + i] < light[30 + i] for i in range(14)) >= 13  # 0.5 s, steadily
        assert app.tokens_seen > 40  # the answer went on under the blackout
        assert analyser.report().general_per_s == 0
        cut = FlashAnalyser(FPS)  # the same picture cut to black and back
        for image in [images[29]] * 5 + [images[60]] * 5 + [images[29]] * 5:
            cut.add(image)
        assert cut.report().general_per_s >= 1

        for i in range(60):  # pressed as fast as a hand can
            if i % 3 == 0:
                keys.queue.append(clicker(pygame.K_PERIOD, "."))
            app.frame()
            analyser.add(read_rgb(target.fbo, target.size))
        report = analyser.report()
        assert report.compliant, report
    finally:
        app.release()
        target.close()


def test_a_cue_plays_a_saved_run_in_front_of_the_source(tmp_path):
    """A cue's `trace` (a path from the cue file's folder) is played in place of an answer: the
    scene starts over with it, its prompt above it, marked as a recorded run, and the prompt
    box opens after it; a trace of a model with other blocks is refused once the model loads."""
    frames = _synthetic_run(12)  # 2 blocks
    write_trace(tmp_path / "saved.npz", frames, {"prompt": "a saved run"})
    show = load_cues(_write(tmp_path, '[[cue]]\nnote = "A run from yesterday."\n'
                                      'trace = "saved.npz"\n'))  # fmt: skip
    with pytest.raises(UserError, match="cue 1: saved.npz is a run of a model with 2 blocks"):
        show.check(3, None)
    app, target, keys = _cued(show, 40)
    try:
        for _ in range(3):
            app.frame()
        assert app.tokens_seen > 0 and app.prompt_shown == ""
        keys.press(pygame.K_PAGEDOWN)
        for _ in range(MAX_FRAMES):
            if app.idle:
                break
            app.frame()
        assert app.prompt_shown == "a saved run" and app.intake.recorded
        assert len(app.scene.tokens) == len(frames)  # the trace's, the answer before let go
    finally:
        app.release()
        target.close()


def _cued(show, frames: int) -> tuple[App, HeadlessTarget, Keys]:
    """A small headless app with the cue list `show`, its source a played run of `frames`
    tokens standing for the model, and the keys it will be given."""
    clock = FixedStepClock(FPS)
    model = TracePlayer(_synthetic_run(frames), [i / FPS for i in range(frames)],
                        lambda: clock.now, Status("generating", model="tiny")).start()  # fmt: skip
    target = HeadlessTarget((160, 90))
    app = App(load_settings("default"), target, model, clock, adaptive=False, cues=show)
    return app, target, Keys(app)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "talk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_clicker_keys_step_the_cues_on_a_real_model(tiny_llama_dir, tmp_path, monkeypatch,
                                                    caplog):  # fmt: skip
    """PageDown runs the next cue (its prompt, scene, ablation), → too, PageUp and ← go back
    (the stage as that cue set it); the notes go to the terminal only, and a cue that changes a
    block the model lacks is said there as the model loads; while the show is on,
    the model idle, letters are commands (B blacks out) and Enter opens the box, in which B is
    typed; Esc leaves the show (→ steps the answer again), F5 starts it at cue 1, and a second
    Esc quits."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings("default", {"model": {"name": str(tiny_llama_dir), "threads": 1},
                                         "generation": {"temperature": 0.0}})  # fmt: skip
    target = HeadlessTarget((160, 90))
    beyond = '[[cue]]\nnote = "Block 7: the tiny model has three."\nablate = ["mlp:7"]\n'
    show = load_cues(_write(tmp_path, f"{TALK}\n{beyond}"))
    caplog.set_level("INFO", "neuroweb.show")
    with LocalSource(settings) as source:
        app = App(settings, target, source, FixedStepClock(FPS), adaptive=False, cues=show)
        keys = Keys(app)

        def answered() -> None:
            for _ in range(MAX_FRAMES):
                if app.idle and app.status.state == "finished":
                    return
                app.frame()
            raise AssertionError(app.status)

        try:
            keys.press(pygame.K_PAGEDOWN)
            assert show.index == 0 and app.intake.gen.max_tokens == 6
            answered()
            assert app.prompt_shown == "Count to three" and app.stage.target == 0.0
            assert "Say hello." in caplog.text and "cue 1/4: a prompt" in caplog.text
            assert "cue 4: --ablate mlp:7: the model has blocks 0–2" in caplog.text  # on load

            keys.press(pygame.K_b, "b")  # idle, in the show: the clicker's blank key
            assert app.stage.blackout and app.controls.box is None
            keys.press(pygame.K_PERIOD, ".")
            assert not app.stage.blackout

            keys.press(pygame.K_RIGHT)
            assert show.index == 1 and app.stage.target == 1.0
            keys.press(pygame.K_PAGEDOWN)
            assert show.index == 2 and app.stage.target == 0.0
            assert app.intake.interventions.ablations == (Ablation("mlp", 1),)
            answered()
            assert app.prompt_shown == "Count to four" and app.scene.changed == ("mlp:1",)

            keys.press(pygame.K_LEFT)  # back: the stage as cue 2 left it, nothing ablated
            assert show.index == 1 and app.stage.target == 1.0
            assert not app.intake.interventions.active
            keys.press(pygame.K_PAGEUP)
            assert show.index == 0 and app.stage.target == 0.0

            keys.press(pygame.K_RETURN)  # the box opens; a B in it is text
            keys.press(pygame.K_b, "B")
            assert app.controls.box == "B" and not app.stage.blackout
            keys.press(pygame.K_BACKSPACE)
            keys.press(pygame.K_RETURN)  # empty: closes without asking

            keys.press(pygame.K_ESCAPE)  # leaves the show: → is the answer's step again
            assert app.running and not show.on
            keys.press(pygame.K_RIGHT)
            assert show.index == 0 and app.intake.paused
            keys.press(pygame.K_F5)
            assert show.on and show.index == 0 and not app.intake.paused
            keys.press(pygame.K_ESCAPE)
            keys.press(pygame.K_ESCAPE)
            assert not app.running
            assert not any("Say hello." in str(n) for n in app.hud.notices)
        finally:
            app.release()
    target.close()


def test_a_bad_cue_file_is_one_line_with_its_place(tmp_path, capsys):
    bad = _write(tmp_path, TALK.replace('scene = "architecture"', 'scene = "stage"'))
    assert main(["run", "--cues", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f'neuroweb: {bad}:9: cue 2: scene must be one of "web" | "architecture", '
                   "got 'stage'")  # fmt: skip
    for text, said in (
        (TALK.replace('ablate = ["mlp:1"]', 'ablate = ["mlp:one"]'),
         ":14: cue 3: ablate mlp:one: expected mlp:BLOCK"),
        (TALK.replace("tokens = 6", "tokens = 0"), ":5: cue 1: tokens must be int >= 1, got 0"),
        (TALK.replace('note = "Now the parts."', 'notes = "Now the parts."'),
         ":8: cue 2: unknown key 'notes'"),
        (TALK + 'preset = "no-such-look"\n', ":16: cue 3: preset: "),
        ("[[cue]]\nnote = 'the file ends'\nprompt = \n", "not valid TOML"),
        ("", ":1: 'cue' is missing"),
        ('[[cue]]\ntrace = "gone.npz"\n', f":2: cue 1: trace: {tmp_path / 'gone.npz'}: no such"),
        ('[[cue]]\ntrace = "a.npz"\nprompt = "b"\n', ":2: cue 1: trace and prompt together"),
        ('[[cue]]\ncamera = "close"\n', ':2: cue 1: camera must be "wide", "answer" or "block N"'),
    ):  # fmt: skip
        assert main(["run", "--cues", str(_write(tmp_path, text))]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"neuroweb: {tmp_path / 'talk.toml'}")


def test_the_example_talk_loads_and_fits_smollm2(smollm2_folder):
    """configs/talks/how-a-model-answers.toml: about eight cues, each with a note, every block
    it changes one SmolLM2-135M has (30), an ablation and steering among them."""
    show = load_cues(PRESET_DIR / "talks" / "how-a-model-answers.toml")
    config = json.loads((smollm2_folder / "config.json").read_text())
    blocks, heads = config["num_hidden_layers"], config["num_attention_heads"]
    assert blocks == 30
    show.check(blocks, heads)
    assert show.move(99) == 7 and show.move(8) is None  # past the last cue: it stays
    with pytest.raises(UserError, match=r"how-a-model-answers.toml: cue 6: --ablate mlp:12: "
                       "the model has blocks 0–11"):  # a smaller model than the talk's
        show.check(12, heads)
    assert 6 <= len(show.cues) <= 10 and all(cue.note.strip() for cue in show.cues)
    kinds = {a.kind for cue in show.cues if cue.interventions for a in cue.interventions.ablations}
    assert "mlp" in kinds and any(cue.steer for cue in show.cues)
    assert {cue.scene for cue in show.cues} >= {"web", "architecture"}
    assert all(show.at(i).prompt or i for i in range(len(show.cues)))


def test_a_cue_frames_the_camera_and_holds_it_until_a_cue_lets_go(tmp_path):
    """A cue's `camera`: "block 1" eases the camera in on block 1's row within a second and
    holds it while the answer plays (a desk's camera, which moves by itself for nothing else);
    a later cue's "wide" brings the whole tower back; the next cue, naming none, keeps it; a
    block the model lacks is refused once it loads, naming the cue."""
    from visualizer.render.direction import CLOSE, WIDE

    show = load_cues(_write(tmp_path, '[[cue]]\ncamera = "block 1"\n\n[[cue]]\ncamera = "wide"'
                                      '\n\n[[cue]]\nnote = "no framing"\n'))  # fmt: skip
    with pytest.raises(UserError, match="cue 1: camera block 1: the model has blocks 0–0"):
        show.check(1, None)
    app, target, keys = _cued(show, 200)
    try:
        for _ in range(3):
            app.frame()
        assert (app.camera.height, app.camera.distance) == (WIDE.height, WIDE.distance)
        keys.press(pygame.K_PAGEDOWN)
        for _ in range(2 * FPS):
            app.frame()
        held = app.camera.height, app.camera.distance
        assert held[0] > 0.1 and held[1] == pytest.approx(CLOSE)  # in on a row above the middle
        keys.press(pygame.K_PAGEDOWN)
        for _ in range(FPS):
            app.frame()
        assert (app.camera.height, app.camera.distance) == pytest.approx((0.0, WIDE.distance))
        keys.press(pygame.K_PAGEUP)  # back to cue 1: its framing again
        for _ in range(FPS):
            app.frame()
        assert (app.camera.height, app.camera.distance) == pytest.approx(held)
    finally:
        app.release()
        target.close()
