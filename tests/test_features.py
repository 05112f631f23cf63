"""Feature mapping: node grouping, per-layer normalisation, attention arcs, easing."""

import numpy as np

from visualizer.config import LookSettings
from visualizer.features import SceneState, group_rms
from visualizer.frame import Frame

L, D, H = 3, 10, 2


def frame(index: int, hidden: np.ndarray, attn: np.ndarray, context_start: int = 0) -> Frame:
    return Frame(index, index, "x", False, context_start, hidden.astype(np.float32),
                 np.ones((L, 20), np.float32), attn.astype(np.float32), np.arange(10),
                 np.full(10, 0.1, np.float32), ("a",) * 10, 1.0)  # fmt: skip


def test_group_rms_splits_columns_into_contiguous_groups():
    x = np.arange(10, dtype=np.float32)[None]  # widths 4, 3, 3 for 3 groups of 10
    got = group_rms(x, 3)[0]
    want = [np.sqrt(np.mean(np.square(x[0, a:b]))) for a, b in ((0, 3), (3, 6), (6, 10))]
    assert np.allclose(got, want)


def test_layers_of_very_different_scale_are_both_readable():
    scene = SceneState(LookSettings(nodes_per_layer=5))
    rng = np.random.default_rng(0)
    scales = np.array([1e-2, 1.0, 1e2, 1e4])[:, None]  # embedding .. last block
    attn = np.full((L, H, 1), 1.0)
    for i in range(40):
        scene.ingest(frame(i, rng.uniform(0.5, 1.5, (L + 1, D)) * scales, attn))
    scene.advance(10.0)  # eased all the way
    # every layer has bright and dim nodes, whatever its scale
    assert np.all(scene.level.max(axis=1) > 0.6) and np.all(scene.level.min(axis=1) < 0.4)


def test_arcs_skip_the_attention_sink_and_point_at_run_positions():
    scene = SceneState(LookSettings(arcs_per_layer=1))
    attn = np.zeros((L, H, 5))
    attn[:, :, 0] = 0.9  # the sink (first in view)
    attn[:, :, 2] = 0.08  # the real target: view column 2 = run position 12
    attn[:, :, 4] = 0.02  # the token itself
    scene.ingest(frame(14, np.ones((L + 1, D)), attn, context_start=10))
    scene.advance(10.0)
    assert set(scene.arcs) == {(layer, 12) for layer in range(L)}
    assert all(abs(w - 1.0) < 1e-3 for w in scene.arcs.values())  # renormalised without the sink


def test_values_ease_toward_the_newest_frame_and_a_new_answer_resets():
    scene = SceneState(LookSettings(ease_s=0.1))
    attn = np.full((L, H, 3), 1 / 3)
    scene.ingest(frame(2, np.ones((L + 1, D)), attn))
    scene.advance(0.05)
    assert 0 < scene.head < 2 and scene.pulse < 1  # part of the way, not a jump
    scene.advance(5.0)
    assert abs(scene.head - 2) < 1e-6
    scene.ingest(frame(0, np.ones((L + 1, D)), np.ones((L, H, 1))))
    assert [t.index for t in scene.tokens] == [0]
