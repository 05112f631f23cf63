"""A box drawn says what it is (issue 34, items 2–4). In the talk and the gallery the input's
panels and the output's final norm and unembedding were drawn empty: their labels were below
the venue's smallest type, so a hall saw blank rectangles. Now, in every venue, each panel the
architecture scene draws has words inside it: where the full label does not fit at the
venue's size a shorter one does (render/labels.py), each of its numbers one the diagram says;
a panel none of whose labels fits is left out."""

import re

import pytest

from tests import showcase
from tests.families import FAMILIES, config
from tests.test_safe_area import PRESETS, draw_ui
from visualizer.architecture import from_config
from visualizer.config import load_settings
from visualizer.render.diagram import facts_line, layout
from visualizer.render.labels import labels

PANELS = ("tokens", "embedding", "positions", "final_norm", "unembedding")
STEPS = ("detail_norm", "detail_attention", "detail_add", "detail_mlp")  # the block up close


def _inside(text, box) -> bool:
    left, top, right, bottom = text
    return (box.x - 1 <= left and right <= box.x + box.w + 1
            and box.y - 1 <= top and bottom <= box.y + box.h + 1)  # fmt: skip


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("preset", PRESETS)
def test_every_panel_drawn_has_words_inside(preset, size):
    """The boxes the painter drew for the panels (found by their place in the layout), each
    with at least one text the painter drew wholly inside it; at a desk, a talk and a gallery
    all of them are drawn for SmolLM2's shape (short labels, not left out)."""
    drawn, _ = draw_ui(preset, size, "answer", "architecture")
    d = layout(showcase.architecture(), size)
    focus = showcase.scene(load_settings(preset).look).anatomy.focus
    rects = {box for _, box, font in drawn if not font}
    texts = [box for _, box, font in drawn if font]
    panels = [b for b in d.boxes if b.kind in PANELS or (b.kind in STEPS and b.block == focus)]
    shown = [b for b in panels if (b.x, b.y, b.x + b.w, b.y + b.h) in rects]
    assert len(shown) == len(panels), sorted({b.kind for b in panels} - {b.kind for b in shown})
    empty = [(b.kind, b.label) for b in shown if not any(_inside(t, b) for t in texts)]
    assert not empty, (preset, size, empty)


def test_every_shorter_label_is_shorter_and_true_to_its_numbers():
    """For every family: each label after a panel's first is shorter than the one before it,
    and every number in it is one its full label or the facts' line says."""
    for arch in [showcase.architecture(), *(from_config(config(f).to_dict()) for f in FAMILIES)]:
        d, facts = layout(arch, (1920, 1080)), facts_line(arch)
        for kind in PANELS[1:]:
            said = labels(arch, d.region(kind))
            assert said[0] == d.region(kind).label and len(said) >= 2, (kind, said)
            assert all(len(a) > len(b) for a, b in zip(said, said[1:], strict=False)), said
            numbers = set(re.findall(r"\d[\d,.]*\d|\d", said[0] + " " + facts))
            for short in said[1:]:
                assert set(re.findall(r"\d[\d,.]*\d|\d", short)) <= numbers, (kind, short)


def test_the_answer_drawn_as_tokens_come_is_the_one_a_fresh_renderer_draws():
    """The answer's lines are wrapped again only when a token comes (web_text._lines_of): a
    renderer that drew the answer before its last tokens came draws what a fresh one does."""
    from dataclasses import replace

    import numpy as np

    from tests import showcase
    from visualizer.config import load_settings
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.camera import Camera
    from visualizer.render.passes import PassTimes
    from visualizer.render.renderer import Renderer, read_rgb

    settings, size = load_settings("default"), (1280, 720)
    look, target = settings.look, HeadlessTarget(size)
    scene, overlay = showcase.scene(look, tokens=20), showcase.overlay("answer", 0.0)
    renderers = [Renderer(target.ctx, look, False, PassTimes(target.ctx), settings.venue)]

    def drawn(renderer: Renderer) -> tuple[np.ndarray, list]:
        renderer.draw(target.fbo, size, scene, overlay, Camera(look.drift_deg_s), time=1.0)
        boxes = [box for part, box, _ in renderer.painter.drawn if part == "answer"]
        return read_rgb(target.fbo, size).copy(), boxes

    try:
        before = drawn(renderers[0])
        rng = np.random.default_rng(5)
        for i in range(20, 26):
            scene.ingest(replace(showcase._frame(i, rng, False), text=" lighthouse" * (i % 2 + 1)))
        renderers.append(Renderer(target.ctx, look, False, PassTimes(target.ctx), settings.venue))
        again, fresh = drawn(renderers[0]), drawn(renderers[1])
        assert again[1] == fresh[1] and before[1] != again[1]
        assert np.array_equal(again[0], fresh[0])
    finally:
        for renderer in renderers:
            renderer.release()
        target.close()
