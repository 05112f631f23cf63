"""Fill the frame (issue 34, item 5): in the web scene mid-answer, composed for 16:9 (the tower
on the left third line with the lens beside it, the candidates in the right third, the answer
along the bottom), no third of the 5 % safe area is left nearly empty: at least FILLED of each
third's pixels are lit, at least 5 % relative luminance (what still reads in a lit room).
Real GL through the whole Renderer, each preset's look and venue."""

import numpy as np
import pytest

from tests import showcase
from tests.test_contrast import luminance
from visualizer.config import load_settings
from visualizer.render.layers.room import LIT

SIZE = (1920, 1080)
FILLED = 0.08


def thirds(image: np.ndarray) -> list[float]:
    """The lit share of the safe area's left, middle and right thirds."""
    h, w = image.shape[:2]
    safe = luminance(image[round(0.05 * h) : round(0.95 * h), round(0.05 * w) : round(0.95 * w)])
    width = safe.shape[1]
    return [float((safe[:, i * width // 3 : (i + 1) * width // 3] >= LIT).mean()) for i in range(3)]


@pytest.mark.parametrize("preset", ["default", "talk", "kiosk"])
def test_no_third_of_the_frame_is_left_empty(preset):
    image = showcase.render(load_settings(preset), SIZE, "answer", 0.0)
    lit = thirds(image)
    assert min(lit) >= FILLED, lit
    # the measure sees an empty third: the same frame with its right third blacked out fails
    dark = image.copy()
    dark[:, round(0.05 * SIZE[0] + 0.6 * SIZE[0]) :] = 0
    assert thirds(dark)[2] < FILLED
