"""What the model cannot show exactly is said once: in the trace's notes, on screen in the live
window, and in a video's first seconds. The display name comes from the GGUF itself."""

import shutil

import pytest

from tests.test_app import run_until
from tests.test_cli import neuroweb_here
from visualizer.clock import FixedStepClock
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.model.load import embedded_gguf, resolve
from visualizer.render.app import App
from visualizer.render.offline import Run
from visualizer.sources.local import LocalSource
from visualizer.trace import frames_from_trace, read_trace

BASE = "no chat template (a base model): prompts are used as they are"


@pytest.fixture(scope="module")
def base_model_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama without its chat template: a base model."""
    folder = tmp_path_factory.mktemp("base") / "tiny-base"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / "chat_template.jinja").unlink()
    return folder


def test_a_base_model_says_so_in_its_trace_and_its_video(base_model_dir, tmp_path):
    out = tmp_path / "base.npz"
    result = neuroweb_here("trace", "--prompt", "Once upon a time", "--tokens", "3", "--model",
                           str(base_model_dir), "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = read_trace(out)
    assert trace.meta["notes"].count(BASE) == 1  # once
    assert trace.meta["architecture"]["chat_template"]["value"] is False
    # the prompt is used as it is: no chat markers around it
    assert "<|im_start|>" not in "".join(trace.arrays["token_text"][: trace.meta["n_prompt"]])
    run = Run.from_meta(frames_from_trace(trace), trace.meta)
    clock, target = FixedStepClock(30), HeadlessTarget((64, 36))
    app = App(load_settings("default"), target, run.player(clock, [0.0] * len(run.frames)),
              clock, adaptive=False)  # fmt: skip
    try:  # a video of it says so in its first seconds
        app.frame()
        assert app.overlay().notices.count(BASE) == 1
    finally:
        app.release()
        target.close()


def test_a_base_model_says_so_once_in_the_live_window(base_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings("default", {"model": {"name": str(base_model_dir), "threads": 1},
                                         "generation": {"max_tokens": 4}})  # fmt: skip
    target = HeadlessTarget((320, 180))
    with LocalSource(settings) as stream:
        app = App(settings, target, stream, FixedStepClock(30), adaptive=False)
        try:
            run_until(app, lambda: app.architecture is not None)
            assert BASE in app.overlay().notices
            for _ in range(20):
                app.frame()
            assert [text for _, text in app.hud.notices].count(BASE) == 1
        finally:
            app.release()
    target.close()


def test_the_notes_of_a_model_whose_capture_is_not_exact_reach_the_trace(family_dir, tmp_path):
    out = tmp_path / "moe.npz"
    result = neuroweb_here("trace", "--prompt", "Hi", "--tokens", "2", "--model",
                           str(family_dir("qwen2_moe")), "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = read_trace(out).meta["notes"]
    assert any(note.startswith("MoE blocks (1–2): the experts' activations are not captured")
               for note in notes)  # fmt: skip


def test_a_gguf_is_named_by_its_general_name(smollm2_folder):
    """--model FILE.gguf: the name the file gives itself, not the file's name."""
    folder, name, source = resolve(str(embedded_gguf()), lambda fraction, stage: None)
    assert folder == smollm2_folder
    assert name == "Smollm2 135M 8k Lc100K Mix1 Ep2" and source.endswith("general.name")
