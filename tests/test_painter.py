"""The painter: rectangles and text queued in order and drawn in one call, through a text atlas
that starts over when it fills up (real GL, offscreen)."""

import numpy as np
import pytest

from visualizer.gl.context import HeadlessTarget
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render.layers.text import Painter
from visualizer.render.renderer import read_rgb

SIZE = (320, 180)
RED, BLUE, WHITE = (1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0)


@pytest.fixture
def painter():
    target = HeadlessTarget(SIZE)
    library = ShaderLibrary(target.ctx)
    p = Painter(library)
    target.fbo.use()
    target.fbo.clear(0.0, 0.0, 0.0, 1.0)
    p.next_frame()
    p.begin(SIZE)
    yield p, target
    p.release()
    library.release()
    target.close()


def test_everything_queued_is_drawn_in_order_by_one_call(painter):
    p, target = painter
    p.rect(10, 10, 100, 60, RED)
    p.text("Hello", 20, 20, 30, WHITE)
    p.rect(60, 10, 50, 60, BLUE)  # over the right half of the text
    for i in range(200):  # and many more, as the architecture scene queues
        p.rect(150 + (i % 20) * 8, 100 + (i // 20) * 6, 6, 4, RED)
    p.flush()
    assert p.draws == 1
    image = read_rgb(target.fbo, SIZE).astype(int)
    left, right = image[15:65, 12:58], image[15:65, 62:108]
    assert (left[..., 0] > 200).any() and (left[..., 1] > 200).any()  # red, and white glyphs
    assert (right[..., 2] > 200).all() and (right[..., 1] < 50).all()  # blue covers the text
    assert (image[101:104, 151:156, 0] > 200).all()


def test_text_held_for_the_flush_after_next_goes_over_what_is_drawn_between(painter):
    p, target = painter
    with p.after_next_flush():
        p.rect(40, 40, 40, 40, RED)
    p.rect(20, 20, 80, 80, BLUE)
    p.flush()  # only the blue is drawn: the red waits
    assert (read_rgb(target.fbo, SIZE)[50, 50] == (0, 0, 255)).all()
    p.flush()
    assert (read_rgb(target.fbo, SIZE)[50, 50] == (255, 0, 0)).all()


def _glyphs(p: Painter, text: str, size: int) -> np.ndarray:
    surface = p.fonts.get(size).render(text, True, (255, 255, 255))
    return np.array([[surface.get_at((x, y))[3] > 128 for x in range(surface.get_width())]
                     for y in range(surface.get_height())])  # fmt: skip


def test_a_full_atlas_starts_over_without_losing_what_was_queued(painter):
    """Off-screen text fills the atlas; of the visible texts queued after it, some still fit
    and the rest make it start over mid-queue: each one is drawn with its own glyphs."""
    p, target = painter
    size = 40
    filler = 0
    while True:  # fill the atlas almost to its end, out of sight
        before = len(p._atlas.blocks)
        p.text(f"filler text number {filler:05d}", -5000, 0, size, WHITE)
        filler += 1
        if len(p._atlas.blocks) < before:  # it started over: one more than fits
            break
    p.flush()
    restarts_at = filler - 1
    target.fbo.clear(0.0, 0.0, 0.0, 1.0)
    for n in range(restarts_at - 1):  # as many again, to the atlas's last row
        p.text(f"filler text number {n + restarts_at + 1:05d}", -5000, 0, size, WHITE)
    visible = [f"{n}" for n in range(1000, 1072)]  # 72: more than the atlas's last row holds
    before = len(p._atlas.blocks)
    for i, text in enumerate(visible):
        p.text(text, (i % 8) * 40, (i // 8) * 20, 16, WHITE)
    assert len(p._atlas.blocks) < before + len(visible)  # it started over among them
    p.flush()
    image = read_rgb(target.fbo, SIZE)[:, :, 0] > 128
    for i, text in enumerate(visible):
        glyphs = _glyphs(p, text, 16)
        x, y = (i % 8) * 40, (i // 8) * 20
        drawn = image[y : y + glyphs.shape[0], x : x + glyphs.shape[1]]
        assert (drawn == glyphs[: drawn.shape[0], : drawn.shape[1]]).mean() > 0.98, text


def test_a_block_too_large_for_the_atlas_is_drawn_in_its_place_in_the_order(painter):
    """A poster's huge text does not fit the atlas: it gets a texture of its own and a draw of
    its own, after what was queued before it and under what is queued after."""
    p, target = painter
    p.rect(0, 0, 40, 40, RED)
    block = p.texture_for(("huge",), lambda: p.fonts.get(300, False).render(
        "M" * 12, True, (255, 255, 255)))  # fmt: skip
    assert block.texture is not None and block.width > 2048
    p.image(block, 0, -60, WHITE)  # the glyphs cover the top left
    p.rect(0, 0, 20, 20, BLUE)
    p.flush()
    assert p.draws == 3  # the red, the block, the blue
    image = read_rgb(target.fbo, SIZE).astype(int)
    assert (image[2:18, 2:18, 2] > 200).all() and (image[2:18, 2:18, 0] < 50).all()
    covered = image[22:38, 22:38]
    assert (covered.min(axis=-1) > 200).any()  # white glyphs over the red
