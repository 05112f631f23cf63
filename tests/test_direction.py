"""The camera that directs itself (render/direction.py) and the composition for a wide frame
(camera.py): it moves to a late change of mind in the lens, an entropy spike, or a block that
wrote far more than usual; every move eases over 12 to 24 frames at 30 fps and no point of the
tower moves faster than the eye follows; it holds, then comes back wide; the same frames give
the same camera every time. Real frames (tests/synthetic.py), the real camera's matrices."""

from dataclasses import replace

import numpy as np

from tests.synthetic import synthetic_frame
from visualizer.render import direction, layout
from visualizer.render.camera import IDLE_AFTER_DRAG_S, Camera
from visualizer.render.direction import CLOSE, CLOSE_S, HOLD_S, LIFT, WIDE

L, D = 30, 16
FPS = 30
ASPECT = 16 / 9
PURSUIT = 0.8  # screen heights a second: 30°/s of smooth pursuit at a talk's front row (1.5)


def frame(index: int, *, flip_at: int | None = None, entropy: float = 1.0,
          loud: int | None = None, prompt: bool = False):  # fmt: skip
    """An answer token; `flip_at`: the lens's top word changes at that row and stays; `loud`:
    that block writes ten times what the others do."""
    rng = np.random.default_rng(0)  # the same writes at every token: a calm answer
    step = np.full(L, 0.05)
    if loud is not None:
        step[loud] = 0.5
    hidden = np.cumsum(np.vstack([np.ones((1, D)), rng.normal(size=(L, D)) * step[:, None]]), 0)
    f = synthetic_frame(index, hidden, np.zeros((L, 8)), np.full((L, 2, index + 1), 1.0),
                        entropy=entropy, is_prompt=prompt)  # fmt: skip
    ids = np.full((L + 1, 5), -1, np.int32)
    rows = [*range(0, L + 1, 4), L]
    ids[rows, 0] = 7
    if flip_at is not None:
        ids[[r for r in rows if r >= flip_at], 0] = 9
    text = tuple("new" if r in rows and ids[r, 0] == 9 else "old" if r in rows else ""
                 for r in range(L + 1))  # fmt: skip
    return replace(f, lens_ids=ids, lens_text=text)


def play(camera: Camera, frames: dict[int, object], seconds: float) -> list[np.ndarray]:
    """Advance at 30 fps for `seconds`, showing frames[k] at video frame k; the matrices."""
    out = []
    for k in range(round(seconds * FPS)):
        if k in frames:
            camera.see(frames[k])
        camera.advance(1 / FPS)
        out.append(camera.matrix(ASPECT))
    return out


def screen_y(matrix: np.ndarray, height: float) -> float:
    """Where the tower's axis at `height` is drawn, in screen heights from the top."""
    clip = matrix @ np.array([0.0, height, 0.0, 1.0])
    return float((1 - clip[1] / clip[3]) / 2)


def test_a_late_change_of_mind_is_looked_at_gently_then_left():
    """A flip at row 28: the camera moves in on that row, in 12 to 24 frames, no faster than
    the eye follows; it holds, and CLOSE_S after the move it goes back to the whole tower."""
    camera = Camera(0.0, directed=True)
    calm = {k * 8: frame(k + 1) for k in range(4)}
    matrices = play(camera, {**calm, 40: frame(6, flip_at=28)}, 12.0)
    row_y = float(layout.row_height(L + 1)[28])
    assert camera.direction is not None
    moving = [k for k in range(1, len(matrices))
              if not np.allclose(matrices[k], matrices[k - 1], atol=1e-6)]  # fmt: skip
    first_move = [k for k in moving if k <= 40 + 24]
    assert first_move and first_move[0] == 40, moving[:5]
    assert 12 <= len(first_move) <= 24, len(first_move)
    pairs = zip(matrices, matrices[1:], strict=False)
    speed = max(abs(screen_y(b, y) - screen_y(a, y)) * FPS for a, b in pairs
                for y in layout.row_height(L + 1))  # every row of the tower  # fmt: skip
    assert speed <= PURSUIT, speed
    arrived = matrices[40 + 30]  # in close on row 28
    closer = Camera(0.0)
    closer.height, closer.distance = LIFT * row_y, CLOSE
    np.testing.assert_allclose(arrived, closer.matrix(ASPECT), atol=1e-5)
    back = 40 + round(CLOSE_S * FPS) + 24 + 1  # the longest close shot, then the move out
    np.testing.assert_allclose(matrices[back], Camera(0.0).matrix(ASPECT), atol=1e-5)
    assert camera.direction.shot is WIDE


def test_spikes_and_loud_blocks_are_looked_at_and_a_shot_is_held():
    """An entropy spike sends it to the top of the tower; a block writing ten times its usual
    to its row, but not before HOLD_S has passed since the last move; the prompt and a new
    answer move nothing but back to wide."""
    camera = Camera(0.0, directed=True)
    d = camera.direction
    calm = {k * 4: frame(k + 1, entropy=1.0) for k in range(8)}
    play(camera, calm, 32 / FPS)
    play(camera, {0: frame(9, entropy=4.0)}, 0.5)
    assert d.shot.reason == "entropy spike"
    assert d.shot.height == LIFT * float(layout.row_height(L + 1)[L])
    play(camera, {0: frame(10, loud=5)}, 1.0)  # within the hold: stays on the spike
    assert d.shot.reason == "entropy spike"
    play(camera, {}, HOLD_S - 1.4)
    play(camera, {0: frame(11, loud=5)}, 0.5)
    assert d.shot.reason.startswith("block 5 wrote"), d.shot
    assert d.shot.height == LIFT * float(layout.row_height(L + 1)[6])
    play(camera, {0: frame(0, prompt=True), 3: frame(1, prompt=True, flip_at=28)}, 1.0)
    assert d.shot is WIDE


def test_the_same_frames_give_the_same_camera_and_the_mouse_is_followed():
    """Deterministic (an offline render's parts agree); a drag or the wheel takes the camera,
    and when the mouse lets go the direction eases on from where it was left."""
    frames = {k * 6: frame(k + 1, flip_at=24 if k == 5 else None, loud=3 if k == 9 else None)
              for k in range(14)}  # fmt: skip
    runs = [play(Camera(4.0, directed=True), frames, 5.0) for _ in range(2)]
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))
    camera = Camera(0.0, directed=True)
    play(camera, frames, 2.0)
    camera.zoom(-3)
    zoomed = camera.distance
    play(camera, {}, IDLE_AFTER_DRAG_S - 0.1)
    assert camera.distance == zoomed  # the mouse's, while it holds the camera
    before = camera.matrix(ASPECT)
    after = play(camera, {}, 1.0)
    steps = [np.abs(b - a).max() for a, b in zip([before, *after], after, strict=False)]
    assert 0 < max(steps) < np.abs(after[-1] - before).max() / 4  # eased from there
    assert np.isclose(camera.distance, camera.direction.shot.distance)


def test_a_wide_frame_stands_the_tower_on_its_left_third_line():
    """16:9 and wider: the tower's axis a third of the way across; a square frame: in the
    middle; between, in between; the view itself (depth, up) is the same."""
    camera = Camera(0.0)

    def axis_x(aspect: float) -> float:
        clip = camera.matrix(aspect) @ np.array([0.0, 0.0, 0.0, 1.0])
        return float((clip[0] / clip[3] + 1) / 2)

    assert np.isclose(axis_x(16 / 9), 1 / 3, atol=1e-6)
    assert np.isclose(axis_x(21 / 9), 1 / 3, atol=1e-6)
    assert np.isclose(axis_x(1.0), 0.5, atol=1e-6)
    assert 1 / 3 < axis_x(4 / 3) < 0.5
    assert direction.MOVE_S == (12 / FPS, 24 / FPS)
