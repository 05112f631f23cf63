"""`neuroweb calibrate --out slate.png`: the slate for setting up a venue's projector, read back
from the PNG it writes: a grey ramp of 51 steps of 2 %, the 5 % safe area's frame, the
smallest text as tall as the venue's farthest viewer needs, colour bars (real GL, offscreen)."""

import argparse
import os
import subprocess
import sys

import numpy as np
import pygame
import pytest

from visualizer.config import load_settings
from visualizer.errors import UserError
from visualizer.render.calibrate import calibrate

SIZE = (1920, 1080)


def slate(tmp_path, preset: str, size=SIZE) -> np.ndarray:
    out = tmp_path / f"{preset}.png"
    assert calibrate(argparse.Namespace(preset=preset, out=out, size=size)) == 0
    return pygame.surfarray.array3d(pygame.image.load(str(out))).transpose(1, 0, 2).astype(int)


def runs(row: np.ndarray) -> list[tuple[tuple[int, ...], int]]:
    """The row's runs of one colour, as (colour, length), left to right."""
    found: list = []
    for pixel in map(tuple, row):
        if found and found[-1][0] == pixel:
            found[-1][1] += 1
        else:
            found.append([pixel, 1])
    return [(colour, length) for colour, length in found]


@pytest.mark.parametrize("preset", ["default", "talk"])
def test_the_slate_has_the_ramp_the_safe_area_the_smallest_text_and_bars(tmp_path, preset):
    image = slate(tmp_path, preset)
    h, w = image.shape[:2]
    white = (255, 255, 255)
    # the safe area's frame: its outer edge 5 % in from each edge, black just outside it
    top, left = round(0.05 * h), round(0.05 * w)
    assert (image[top, w // 3 : 2 * w // 3] == white).all()
    assert (image[top - 2, w // 3 : 2 * w // 3] == 0).all()
    assert (image[h // 3 : 2 * h // 3, left] == white).all()
    assert (image[h // 3 : 2 * h // 3, left - 2] == 0).all()
    assert (image[h - 1 - top, w // 3 : 2 * w // 3] == white).all()
    assert (image[h // 3 : 2 * h // 3, w - 1 - left] == white).all()
    # the ramp: between the frame's sides, 51 greys, each brighter than the last, 2 % apart
    ramp = [c for c, n in runs(image[int(0.38 * h), left : w - left])][1:]  # from the frame
    greys = [c[0] for c in ramp if c[0] == c[1] == c[2]]
    while greys and greys[-1] in (0, 255) and greys[-2:] != [250, 255]:
        greys.pop()  # the gap and the frame after the last step
    assert len(greys) == 51 and np.all(np.diff(greys) > 0), greys
    assert greys == [round(255 * k / 50) for k in range(51)]
    # the colour bars at 100 %
    bars = [c for c, n in runs(image[int(0.65 * h), left : w - left]) if n > w / 20]
    assert bars == [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255),
                    (255, 0, 0), (0, 0, 255)]  # fmt: skip
    # the smallest text: as tall as the farthest viewer needs (farthest ÷ 200 of the height)
    band = image[int(0.75 * h) : h - top - 4, left + 4 : w - left - 4]
    rows = np.nonzero((band.max(-1) > 128).any(-1))[0]
    height = rows.max() - rows.min() + 1
    floor = load_settings(preset).venue.farthest_viewer / 200 * h
    print(preset, "smallest text", height, "px, the floor", floor)
    assert floor <= height < 1.3 * floor


def test_its_size_and_a_wrong_file_name(tmp_path):
    assert slate(tmp_path, "kiosk", (1280, 720)).shape == (720, 1280, 3)
    with pytest.raises(UserError, match="expected a .png"):
        calibrate(argparse.Namespace(preset="talk", out=tmp_path / "slate.jpg", size=SIZE))


WINDOW = """
import argparse, pygame
from visualizer.render import calibrate as module
drawn, events = [], [pygame.event.Event(pygame.VIDEOEXPOSE),
                     pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)]
draw = module.Slate.draw
module.Slate.draw = lambda self, fbo, size: (drawn.append(size), draw(self, fbo, size))
pygame.event.wait = lambda: events.pop(0)
status = module.calibrate(argparse.Namespace(preset="talk", out=None, size=(1920, 1080)))
print(status, drawn, len(events))
"""


def test_in_a_window_it_is_drawn_when_the_window_asks_and_esc_closes_it(xvfb):
    """A real window (a private Xvfb, in a process of its own): the slate drawn at the
    window's size once, again only after an event (nothing animates), and Esc closes it."""
    said = subprocess.run([sys.executable, "-c", WINDOW], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"})
    window = load_settings("talk").window
    assert said.stdout.split("\n")[0] == f"0 {[(window.width, window.height)] * 2} 0", said
