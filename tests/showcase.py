"""A scene mid-answer in every state its overlay takes (typing, HUD, notices, an intervention
with the untouched run beside it), in both scenes, built in-process without a model: for the
safe-area, overlap and type-size tests, and for looking at them (`python -m tests.showcase`)."""

import sys
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np

from tests.synthetic import synthetic_frame
from visualizer.architecture import Architecture
from visualizer.config import LookSettings, Settings, load_settings
from visualizer.features import SceneState
from visualizer.frame import Ghost
from visualizer.render.layers.layer import Overlay

L, D, D_FF, H = 30, 36, 64, 9  # SmolLM2's depth and heads (9 query heads, 3 K/V)
NAME = "a synthetic SmolLM2 stand-in"  # width 36, not 576: no picture may claim SmolLM2's
WORDS = (" A lighthouse keeper climbs the tower at dusk, trims the wick, winds the clockwork "
         "that turns the lens and watches the sea for ships in trouble until dawn").split(" ")
PROMPT = "In three sentences, what does a lighthouse keeper do at night?"
HUD = ("59.8 fps   frame 14.2 ms   p99 21.0 ms", "31.2 tok/s   dropped 0",
       f"model {NAME}   30 layers", "render scale 1.00 of 1920×1080   detail 1.0",
       "next prompt: temperature 0.7   panel draws 9",
       "passes, ms: web: 3D 4.1   web: text 1.2   chrome 0.4")  # fmt: skip
STATES = ("answer", "typing", "hud", "notices", "intervened", "all")


@cache
def architecture() -> Architecture:
    """SmolLM2's anatomy (30 blocks, 9 heads sharing 3 K/V heads, RMSNorm, SwiGLU, RoPE) read
    from a tiny random model of it, in-process: named as the stand-in it is (NAME)."""
    import torch
    import transformers

    from visualizer.model.inspect import inspect_model

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=49152, hidden_size=D, intermediate_size=D_FF, num_hidden_layers=L,
        num_attention_heads=H, num_key_value_heads=3, max_position_embeddings=64,
        tie_word_embeddings=True, rope_theta=100000.0)  # fmt: skip
    model = transformers.LlamaForCausalLM(config).eval()
    return inspect_model(model, name=NAME)[0]


def _frame(index: int, rng: np.random.Generator, intervened: bool):
    text = " " + WORDS[index % len(WORDS)]
    attn = rng.uniform(0.0, 1.0, (L, H, index + 1)).astype(np.float32) ** 4
    attn /= attn.sum(-1, keepdims=True)
    probs = np.sort(rng.dirichlet(np.full(10, 0.4)).astype(np.float32))[::-1]
    candidates = tuple(WORDS[(index + k + 1) % len(WORDS)] or " the" for k in range(10))
    frame = synthetic_frame(index, rng.normal(size=(L + 1, D)), rng.uniform(0, 1, (L, D_FF)),
                            attn, text=text, mlp_write=rng.normal(size=(L, D)),
                            topk_probs=probs, topk_text=candidates)  # fmt: skip
    rows = [*range(0, L + 1, 4), L]
    ids = np.full((L + 1, 5), -1, np.int32)
    ids[rows] = 1
    lens_probs = np.zeros((L + 1, 5), np.float32)
    lens_probs[rows, 0] = np.linspace(0.05, 0.93, len(rows))
    lens_text = tuple(WORDS[(index + r) % len(WORDS)] if r in rows else "" for r in range(L + 1))
    frame = replace(frame, lens_ids=ids, lens_probs=lens_probs, lens_text=lens_text)
    if not intervened:
        return frame
    ghost = Ghost(index + (index > 20), " sea" if index > 20 else text, frame.topk_ids,
                  frame.topk_probs[::-1].copy(), candidates[::-1], 1.0, ids, lens_probs,
                  tuple(t[::-1] for t in lens_text))  # fmt: skip
    return replace(frame, changed=("mlp:5",), ghost=ghost)


def scene(look: LookSettings, intervened: bool = False, tokens: int = 36) -> SceneState:
    """Mid-answer: the prompt read, `tokens` - 8 words of the answer, the lens on."""
    rng = np.random.default_rng(3)
    state = SceneState(look)
    for i in range(tokens):
        frame = _frame(i, rng, intervened and i >= 8)
        state.ingest(replace(frame, is_prompt=i < 8))
        state.advance(0.25)
    return state


def overlay(state: str, scene_mix: float) -> Overlay:
    """The overlay in one of STATES ("all": typing, HUD, notices, an intervention and a
    recording at once)."""
    every = state == "all"
    return Overlay(
        "generating", "", 1.0, NAME, L, PROMPT,
        typing="What is a lighthouse lens made of" if state == "typing" or every else None,
        paused=False, recording="neuroweb-1.mp4" if every else None,
        hud=HUD if state == "hud" or every else (),
        notices=(("block 5's MLP off from the next token", "screenshot saved: neuroweb-1.png")
                 if state in ("notices", "intervened") or every else ()),
        errors=(), architecture=architecture(), scene_mix=scene_mix,
        intervene="changed: mlp:5" if state == "intervened" or every else "")  # fmt: skip


def render(settings: Settings, size: tuple[int, int], state: str, scene_mix: float
           ) -> np.ndarray:  # fmt: skip
    """The whole frame through a Renderer in the preset's look and venue, [h, w, 3] uint8."""
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.camera import Camera
    from visualizer.render.passes import PassTimes
    from visualizer.render.renderer import Renderer, read_rgb

    look = settings.look
    target = HeadlessTarget(size)
    renderer = Renderer(target.ctx, look, False, PassTimes(target.ctx), settings.venue)
    try:
        intervened = state in ("intervened", "all")
        renderer.draw(target.fbo, size, scene(look, intervened), overlay(state, scene_mix),
                      Camera(look.drift_deg_s), time=1.0)  # fmt: skip
        return read_rgb(target.fbo, size).copy()
    finally:
        renderer.release()
        target.close()


if __name__ == "__main__":  # python -m tests.showcase OUT_DIR [PRESET ...]: PNGs at 1920×1080
    import pygame

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for preset in sys.argv[2:] or ["default"]:
        settings = load_settings(preset)
        for name, mix in (("web", 0.0), ("architecture", 1.0)):
            for state in ("all", "answer"):
                image = render(settings, (1920, 1080), state, mix)
                surface = pygame.image.frombuffer(image.tobytes(), (1920, 1080), "RGB")
                pygame.image.save(surface, str(out / f"{preset}-{name}-{state}.png"))
