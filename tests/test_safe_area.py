"""The picture made for the room it is shown in (render/layers/room.py): every text and panel of
both scenes lies in the 5 % graphics-safe area at every size, no two overlap in any state of
the overlay, and no text is smaller than the venue's farthest viewer can read (details for a
close look are shown at a desk, left out in a hall). Real GL, offscreen; the 2D layers alone,
so that the pixels that are not the background are the words and panels."""

from itertools import combinations

import msgspec
import numpy as np
import pytest

from tests import showcase
from visualizer.config import ConfigError, load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.camera import Camera
from visualizer.render.layers.architecture import ArchitectureView
from visualizer.render.layers.chrome import Chrome
from visualizer.render.layers.layer import Kit, LayerInput
from visualizer.render.layers.operator import Operator
from visualizer.render.layers.room import SAFE, Room
from visualizer.render.layers.text import Painter
from visualizer.render.layers.web_text import WebText
from visualizer.render.renderer import read_rgb

SIZES = [(1280, 720), (1920, 1080), (3840, 2160)]
SCENES = {"web": 0.0, "architecture": 1.0}
PRESETS = ("default", "talk", "kiosk")  # a desk, a talk, a gallery
_scenes: dict = {}


def draw_ui(preset: str, size: tuple[int, int], state: str, scene: str, pixels: bool = False):
    """The scene's 2D layers, the chrome and the operator's, in `state`: (what the painter drew,
    the image or None). The image is cleared to the look's background first."""
    settings = load_settings(preset)
    look = settings.look
    key = (preset, state in ("intervened", "all"))
    if key not in _scenes:
        _scenes[key] = showcase.scene(look, key[1])
    target = HeadlessTarget(size)
    library = ShaderLibrary(target.ctx)
    painter = Painter(library)
    kit = Kit(library, painter, look, settings.venue)
    layers = [WebText(kit) if scene == "web" else ArchitectureView(kit), Chrome(kit),
              Operator(kit)]  # fmt: skip
    try:
        target.fbo.use()
        target.fbo.clear(*(int(look.background[i : i + 2], 16) / 255 for i in (1, 3, 5)), 1.0)
        painter.next_frame()
        frame = LayerInput(size, _scenes[key], showcase.overlay(state, SCENES[scene]),
                           Camera(look.drift_deg_s), 1.0, 1.0, 1.0, look.history)  # fmt: skip
        for layer in layers:
            layer.update(frame)
            layer.draw(frame)
        image = read_rgb(target.fbo, size).astype(int) if pixels else None
        return list(painter.drawn), image
    finally:
        for layer in layers:
            layer.release()
        painter.release()
        library.release()
        target.close()


def margins(image: np.ndarray, background: str) -> tuple[float, float, float, float]:
    """Left, right, top and bottom: the share of the width or height between each edge and
    the nearest pixel that is not the background."""
    colour = np.array([int(background[i : i + 2], 16) for i in (1, 3, 5)])
    rows, cols = np.nonzero(np.abs(image - colour).max(-1) > 8)
    h, w = image.shape[:2]
    return cols.min() / w, (w - 1 - cols.max()) / w, rows.min() / h, (h - 1 - rows.max()) / h


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scene", SCENES)
def test_every_text_and_panel_lies_in_the_safe_area(scene, size):
    """Everything at once (typing, the HUD, notices, an intervention and its untouched run):
    no pixel of it within 5 % of an edge; and the painter's boxes say the same."""
    drawn, image = draw_ui("default", size, "all", scene, pixels=True)
    found = margins(image, load_settings("default").look.background)
    print(scene, size, "left, right, top, bottom %:", [round(100 * m, 2) for m in found])
    assert min(found) >= SAFE - 0.5 / size[1], found
    w, h = size
    for part, (left, top, right, bottom), _ in drawn:
        assert left >= SAFE * w - 1 and right <= (1 - SAFE) * w + 1, (part, left, right)
        assert top >= SAFE * h - 1 and bottom <= (1 - SAFE) * h + 1, (part, top, bottom)


def _overlapping(drawn) -> list[tuple[str, str]]:
    boxes: dict[str, list] = {}
    for part, box, _ in drawn:
        boxes.setdefault(part, []).append(box)
    assert "" not in boxes, "a box drawn outside any part"
    return [(a, b) for a, b in combinations(sorted(boxes), 2)
            if any(p[0] < q[2] - 0.5 and q[0] < p[2] - 0.5 and p[1] < q[3] - 0.5
                   and q[1] < p[3] - 0.5 for p in boxes[a] for q in boxes[b])]  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
def test_no_two_parts_overlap_in_any_state(preset):
    """Typing after an answer, the HUD, notices, an intervention with its untouched run, all
    of them at once: in each scene no part's boxes (its words, its panels) touch another's
    (the Ask box was drawn over the answer, the HUD over "changed: mlp:5")."""
    for scene in SCENES:
        for state in showcase.STATES:
            drawn, _ = draw_ui(preset, (1280, 720), state, scene)
            assert not _overlapping(drawn), (scene, state, _overlapping(drawn))


@pytest.mark.parametrize("preset", PRESETS)
def test_the_smallest_text_reads_from_the_back_of_the_room(preset):
    """Every text but the operator's HUD is at least farthest_viewer ÷ 200 of the height
    (3 % for a talk); the details for a close look are drawn at a desk and left out in a
    hall or a gallery; the HUD keeps a desk's type."""
    venue = load_settings(preset).venue
    details = {"web": "logit lens,", "architecture": "How to read it"}
    for scene in SCENES:
        drawn, _ = draw_ui(preset, (1280, 720), "all", scene)
        sizes = {part: min(s for p, _, s in drawn if p == part and s)
                 for part, _, s in drawn if s}  # fmt: skip
        audience = min(s for part, s in sizes.items() if part != "hud")
        assert audience >= venue.farthest_viewer / 200 * 720 - 0.5, (scene, sizes)
        assert sizes["hud"] <= Room.of((1280, 720), load_settings().venue).type(0.022)
        labels = _labels(preset, scene)
        shown = any(label.startswith(details[scene]) for label in labels)
        assert shown == (preset == "default"), (scene, labels)


def _labels(preset: str, scene: str) -> set[str]:
    """The texts a scene draws, by recording the painter's text calls."""
    seen: set[str] = set()
    text = Painter.text

    def recorded(self, label, *args, **kwargs):
        seen.add(label)
        return text(self, label, *args, **kwargs)

    Painter.text = recorded
    try:
        draw_ui(preset, (1280, 720), "answer", scene)
    finally:
        Painter.text = text
    return seen


def test_venues_are_presets_data():
    """The desk by default (someone at the mouse); a talk at 6 and 1.5 screen heights on a
    projector; the kiosk a gallery at 4 and 1; both with a camera that directs itself; a
    nearest viewer beyond the farthest is refused with its key."""
    venues = {name: load_settings(name).venue for name in ("default", "talk", "kiosk")}
    assert msgspec.structs.asdict(load_settings().venue) == msgspec.structs.asdict(
        venues["default"]) == {"farthest_viewer": 2.0, "nearest_viewer": 1.0, "projector": False,
                               "directed_camera": False}  # fmt: skip
    assert (venues["talk"].farthest_viewer, venues["talk"].nearest_viewer) == (6.0, 1.5)
    assert venues["talk"].projector and venues["talk"].directed_camera
    assert (venues["kiosk"].farthest_viewer, venues["kiosk"].nearest_viewer) == (4.0, 1.0)
    assert venues["kiosk"].directed_camera
    with pytest.raises(ConfigError, match="venue"):
        load_settings(None, {"venue": {"nearest_viewer": 3.0}})
    with pytest.raises(ConfigError, match="venue.farthest_viewer"):
        load_settings(None, {"venue": {"farthest_viewer": 0}})


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_architecture_scene_s_paragraphs_are_whole_or_left_out(size, monkeypatch):
    """"How to read it" and the up-close notes stop before a paragraph that does not fit,
    never inside it: a poster once said "Pink and" and no more."""
    from visualizer.render.layers.architecture_marks import Marks

    paragraphs: list[str] = []
    seen: list[str] = []
    legend, flow, text = Marks._legend, Marks._flow, Painter.text

    def kept_legend(self, box, size_, alpha, given):
        paragraphs.extend(given)
        return legend(self, box, size_, alpha, given)

    def kept_flow(self, box, given, size_, alpha):
        paragraphs.extend(given)
        return flow(self, box, given, size_, alpha)

    def recorded(self, label, *args, **kwargs):
        seen.append(label)
        return text(self, label, *args, **kwargs)

    monkeypatch.setattr(Marks, "_legend", kept_legend)
    monkeypatch.setattr(Marks, "_flow", kept_flow)
    monkeypatch.setattr(Painter, "text", recorded)
    draw_ui("default", size, "answer", "architecture")
    started = 0
    for paragraph in paragraphs:
        words = paragraph.split()
        if any(label.split()[:2] == words[:2] for label in seen if label.strip()):
            started += 1
            assert any(label.split()[-1:] == words[-1:] for label in seen if label.strip()), (
                f"cut inside: {paragraph!r}")
    assert started >= 2  # the legend's first paragraph and the block's first note at least
