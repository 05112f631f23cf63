"""The layers' one interface (render/layers/layer.py) on real GL: every layer in the renderer's
list keeps it, and a layer added to the list alone is built, drawn and released."""

import inspect
from typing import get_type_hints

import numpy as np
import pytest
from msgspec import structs

from tests.test_render import OVERLAY, SIZE, steady_scene
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.render import renderer as renderer_module
from visualizer.render.camera import Camera
from visualizer.render.layers.layer import STAGES, Kit, Layer, LayerInput
from visualizer.render.layers.safe_area import MARGIN
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import LAYERS, Renderer, read_rgb

BOX = (40, 30, 50, 20)  # the marker's left, top, width, height in pixels
MAGENTA = (1.0, 0.0, 1.0, 1.0)


@pytest.fixture
def target():
    t = HeadlessTarget(SIZE)
    yield t
    t.close()


def drawn(target, look, scene=None) -> np.ndarray:
    """One frame through a Renderer built from renderer.LAYERS as it is now, [h, w, 3]."""
    renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
    try:
        renderer.draw(target.fbo, SIZE, scene or steady_scene(look)[0], OVERLAY, Camera(0.0),
                      time=1.0)  # fmt: skip
        return read_rgb(target.fbo, SIZE).astype(int)
    finally:
        renderer.release()


def test_every_layer_in_the_list_keeps_the_one_interface(target):
    """Built as Layer(kit), a stage of the renderer's, update(frame) and draw(frame) taking one
    LayerInput, release() taking nothing: the renderer calls nothing else."""
    renderer = Renderer(target.ctx, load_settings("default").look, False, PassTimes(target.ctx))
    try:
        assert [type(layer) for layer in renderer.layers] == list(LAYERS)
        for layer in renderer.layers:
            kind = type(layer)
            assert isinstance(layer, Layer) and kind.stage in STAGES, kind
            assert list(inspect.signature(kind).parameters) == ["kit"], kind
            assert get_type_hints(kind.__init__)["kit"] is Kit, kind
            for name in ("update", "draw"):
                method = getattr(kind, name)
                assert list(inspect.signature(method).parameters) == ["self", "frame"], kind
                assert get_type_hints(method)["frame"] is LayerInput, (kind, name)
            assert list(inspect.signature(kind.release).parameters) == ["self"], kind
    finally:
        renderer.release()


class Marker(Layer):
    """A layer no module knows of: a magenta box, over every scene."""

    stage = "chrome"
    calls: list[str] = []

    def __init__(self, kit: Kit) -> None:
        self.painter = kit.painter
        Marker.calls.append("built")

    def update(self, frame: LayerInput) -> None:
        Marker.calls.append(f"update {frame.size}")

    def draw(self, frame: LayerInput) -> None:
        Marker.calls.append("draw")
        self.painter.begin(frame.size)
        self.painter.rect(*BOX, MAGENTA)
        self.painter.flush()

    def release(self) -> None:
        Marker.calls.append("released")


def test_a_layer_added_to_the_list_alone_is_drawn(target, monkeypatch):
    """Adding a layer is one list entry: nothing else is told of the marker, and its box is
    in the frame, where it put it, in its colour; the renderer built, updated before drawing
    and released it."""
    look = load_settings("default").look
    scene = steady_scene(look)[0]
    before = drawn(target, look, scene)
    Marker.calls.clear()
    monkeypatch.setattr(renderer_module, "LAYERS", (*LAYERS, Marker))
    after = drawn(target, look, scene)
    assert Marker.calls == ["built", f"update {SIZE}", "draw", "released"]
    x, y, w, h = BOX
    assert (after[y : y + h, x : x + w] == (255, 0, 255)).all()
    assert not (before[y : y + h, x : x + w] == (255, 0, 255)).all(axis=-1).any()
    outside = np.ones(SIZE[::-1], bool)
    outside[y : y + h, x : x + w] = False
    assert np.abs(after - before)[outside].max() <= 2  # the rest as it was


def test_the_safe_area_frame_is_drawn_only_when_asked(target, monkeypatch):
    """By default the safe area's layer draws nothing (the frame is the one drawn without
    it); with look.safe_area its frame's inner edge lies 5 % in from every edge, all round."""
    look = load_settings("default").look
    scene = steady_scene(look)[0]
    shown = drawn(target, structs.replace(look, safe_area=True), scene)
    default = drawn(target, look, scene)
    monkeypatch.setattr(renderer_module, "LAYERS", tuple(k for k in LAYERS
                                                         if k.__name__ != "SafeArea"))
    assert np.array_equal(default, drawn(target, look, scene))
    w, h = SIZE
    left, top = round(MARGIN * w), round(MARGIN * h)
    right, bottom = w - left, h - top
    changed = np.abs(shown - default).max(-1) > 40  # [h, w]
    rows, cols = np.nonzero(changed)
    assert rows.min() >= top - 3 and rows.max() <= bottom + 2
    assert cols.min() >= left - 3 and cols.max() <= right + 2
    inner = changed[top + 2 : bottom - 2, left + 2 : right - 2]
    assert not inner.any()  # nothing inside the safe area changes
    mid_x, mid_y = (left + right) // 2, (top + bottom) // 2
    for line in (changed[top - 2 : top, mid_x], changed[bottom : bottom + 2, mid_x],
                 changed[mid_y, left - 2 : left], changed[mid_y, right : right + 2]):  # fmt: skip
        assert line.all()  # the line, on every side, just outside the 5 % line
