"""Luminance first (issue 34, item 4): the architecture scene's structure (block tiles, panels,
each block's steps, the meters) is carried by light strokes and brightness, at least 3:1
against what lies around it by the WCAG formula, its text at least 4.5:1 (7:1 on a
projector); on a projector nothing that carries meaning is under 5 % relative luminance.

Measured on the colours the renderer draws: one frame of the scene mid-answer through the
whole Renderer at 1920×1080, read back; where each tile, panel and step lies comes from the
diagram's layout, where each text lies from the painter's boxes."""

from functools import cache

import numpy as np
import pytest

from tests import showcase
from visualizer.anatomy import ROWS
from visualizer.config import load_settings, rgb
from visualizer.gl.context import HeadlessTarget
from visualizer.render.camera import Camera
from visualizer.render.diagram import layout
from visualizer.render.layers.text import Painter
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer, read_rgb

SIZE = (1920, 1080)
PRESETS = ("default", "talk", "kiosk")  # a desk, a talk (on a projector), a gallery
SCENE_PARTS = ("title", "caption", "input", "stack", "output", "anatomy")  # the scene's texts
STEPS = ("norm", "attention", "add", "mlp")
PANELS = ("tokens", "embedding", "positions", "final_norm", "unembedding")
_frames: dict = {}


def luminance(srgb) -> np.ndarray:
    """WCAG 2.2's relative luminance of sRGB colours in 0..255, [..., 3] → [...]."""
    c = np.asarray(srgb, float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def ratio(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def frame(preset: str):
    """The scene mid-answer in `preset`'s look and venue: (image [h, w, 3], the painter's
    boxes, the words of each text box in their order)."""
    if preset not in _frames:
        words: list[str] = []
        text = Painter.text

        def recorded(self, label, *args, **kwargs):
            words.extend([label] if label else [])
            return text(self, label, *args, **kwargs)

        Painter.text = recorded
        try:
            _frames[preset] = (*_render(load_settings(preset)), words)
        finally:
            Painter.text = text
    return _frames[preset]


def _render(settings) -> tuple[np.ndarray, list]:
    """As showcase.render draws it, and the boxes its painter drew."""
    look = settings.look
    target = HeadlessTarget(SIZE)
    renderer = Renderer(target.ctx, look, False, PassTimes(target.ctx), settings.venue)
    try:
        renderer.draw(target.fbo, SIZE, showcase.scene(look), showcase.overlay("answer", 1.0),
                      Camera(look.drift_deg_s), time=1.0)  # fmt: skip
        return read_rgb(target.fbo, SIZE).copy(), list(renderer.painter.drawn)
    finally:
        renderer.release()
        target.close()


def _pixels(box) -> tuple[int, int, int, int]:
    """The first and last column and row whose pixel centres lie in `box` (x, y, w, h)."""
    x, y, w, h = box
    return (int(np.ceil(x - 0.5)), int(np.floor(x + w - 0.5)), int(np.ceil(y - 0.5)),
            int(np.floor(y + h - 0.5)))  # fmt: skip


def ring(lum: np.ndarray, box, out: int = 0) -> float:
    """The median luminance of the one-pixel ring just inside `box` (`out` pixels outside)."""
    x0, x1, y0, y1 = _pixels(box)
    x0, x1, y0, y1 = x0 - out, x1 + out, y0 - out, y1 + out
    edge = np.concatenate([lum[y0, x0 : x1 + 1], lum[y1, x0 : x1 + 1], lum[y0 : y1 + 1, x0],
                           lum[y0 : y1 + 1, x1]])  # fmt: skip
    return float(np.median(edge))


@cache
def measured(preset: str) -> dict[str, list[tuple[str, float, float]]]:
    """What carries meaning, each as (name, its luminance, that of what lies around it), by
    kind: "structure" (edges of tiles and panels, each step against its tile, the meters'
    bars) and "text" (every line the scene draws, against the pixels of its own box)."""
    image, drawn, words = frame(preset)
    lum = luminance(image)
    background = float(luminance(np.array(rgb(load_settings(preset).look.background)) * 255))
    d = layout(showcase.architecture(), SIZE)
    structure = []
    for tile in d.of("block"):
        box = (tile.x, tile.y, tile.w, tile.h)
        structure.append((f"tile {tile.block}", ring(lum, box), background))
    for kind in PANELS:
        r = d.region(kind)
        structure.append((kind, ring(lum, (r.x, r.y, r.w, r.h)), background))
    for chip in (b for b in d.boxes if b.kind in STEPS):
        box = (chip.x, chip.y, chip.w, chip.h)
        structure.append((f"{chip.kind} of {chip.block}", ring(lum, box),
                          ring(lum, box, out=1)))  # fmt: skip
    a = showcase.scene(load_settings(preset).look).anatomy
    for meter in d.of("meter"):  # the bar's first pixels, where it is long enough to measure
        value = a.residual if meter.label == "residual" else a.mlp
        if value[meter.block] * meter.w < 4:
            continue
        x0, _, y0, y1 = _pixels((meter.x, meter.y, meter.w, meter.h))
        around = float(np.median(lum[y0 - 1, x0 : x0 + 4]))
        structure.append((f"{meter.label} meter {meter.block}",
                          float(np.median(lum[y0 : y1 + 1, x0 : x0 + 2])), around))  # fmt: skip
    texts = []
    boxes = [(part, box) for part, box, size in drawn if size]
    assert len(boxes) == len(words)
    for (part, (left, top, right, bottom)), said in zip(boxes, words, strict=True):
        if part not in SCENE_PARTS or not said.strip():  # a space between words: no ink
            continue
        pixels = lum[max(0, round(top)) : round(bottom), max(0, round(left)) : round(right)]
        values, counts = np.unique(pixels, return_counts=True)
        ground = float(values[counts.argmax()])  # the flat colour the words are drawn on
        ink = max((float(pixels.max()), float(pixels.min())), key=lambda v: ratio(v, ground))
        texts.append((f"{part}: {said!r}", ink, ground))
    return {"structure": structure, "text": texts}


def heads_floor(preset: str) -> float:
    """The darkest cell of the up-close block's heatmaps in their newest row: every position
    there has some weight (the newest token sees all of them)."""
    lum = luminance(frame(preset)[0])
    d = layout(showcase.architecture(), SIZE)
    focus = showcase.scene(load_settings(preset).look).anatomy.focus
    darkest = 1.0
    for head in (b for b in d.of("detail_head") if b.block == focus):
        x0, x1, _, y1 = _pixels((head.x, head.y, head.w, head.h))
        row = lum[y1 - int(head.h / ROWS / 2), x0 : x1 + 1]  # the middle of the newest row
        darkest = min(darkest, float(row.min()))
    return darkest


def report(preset: str) -> dict[str, float]:
    """The least contrast of each kind (printed by the tests; `python -m tests.test_contrast`)."""
    found = measured(preset)
    return {kind: min(ratio(a, b) for _, a, b in marks) for kind, marks in found.items()}


@pytest.mark.parametrize("preset", PRESETS)
def test_structure_and_text_stand_out_by_their_light(preset):
    venue = load_settings(preset).venue
    found = measured(preset)
    print(preset, {k: round(v, 2) for k, v in report(preset).items()})
    assert len(found["structure"]) > 200 and len(found["text"]) >= 20
    low = [(name, round(ratio(a, b), 2)) for name, a, b in found["structure"] if ratio(a, b) < 3]
    assert not low, low
    least = 7.0 if venue.projector else 4.5
    low = [(name, round(ratio(a, b), 2)) for name, a, b in found["text"] if ratio(a, b) < least]
    assert not low, low


@pytest.mark.parametrize("preset", [p for p in PRESETS if load_settings(p).venue.projector])
def test_on_a_projector_nothing_that_carries_meaning_is_under_five_percent(preset):
    dark = [(name, round(a, 4)) for kind in measured(preset).values()
            for name, a, _ in kind if a < 0.05]  # fmt: skip
    assert not dark, dark
    assert heads_floor(preset) >= 0.05


if __name__ == "__main__":
    for name in PRESETS:
        print(name, {k: round(v, 2) for k, v in report(name).items()},
              "heatmap floor", round(heads_floor(name), 4))  # fmt: skip
