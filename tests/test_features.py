"""Feature mapping: node grouping, per-layer normalisation, attention arcs, easing."""

from dataclasses import replace

import numpy as np
import pytest

from tests.synthetic import synthetic_frame
from tests.tolerance import drift
from visualizer.config import LookSettings
from visualizer.features import SHARE_FLOOR, SceneState, percent
from visualizer.frame import Frame
from visualizer.measures import group_rms

L, D, H = 3, 10, 2


def frame(index: int, hidden: np.ndarray, attn: np.ndarray, context_start: int = 0) -> Frame:
    return synthetic_frame(index, hidden, np.ones((L, 20), np.float32), attn,
                           context_start=context_start)


def test_group_rms_splits_columns_into_contiguous_groups():
    x = np.arange(10, dtype=np.float32)[None]  # widths 4, 3, 3 for 3 groups of 10
    got = group_rms(x, 3)[0]
    want = [np.sqrt(np.mean(np.square(x[0, a:b]))) for a, b in ((0, 3), (3, 6), (6, 10))]
    # float32 squares of up to 4 values, their mean and its root, on each side
    assert np.allclose(got, want, rtol=drift(np.float32, 4 + 2), atol=0)


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


def test_arcs_show_the_sink_s_share_as_it_is_and_point_at_run_positions():
    scene = SceneState(LookSettings(arcs_per_layer=2, history=3))
    attn = np.zeros((L, H, 5))
    attn[:, :, 0] = 0.9  # the sink (first in view: run position 10)
    attn[:, :, 2] = 0.08  # view column 2 = run position 12
    attn[:, :, 4] = 0.02  # the token itself: never an arc
    scene.ingest(frame(14, np.ones((L + 1, D)), attn, context_start=10))
    scene.advance(10.0)
    assert set(scene.arcs) == {(layer, p) for layer in range(L) for p in (10, 12)}
    # not renormalised: the float32 weight as it is, eased all the way (a rounding or two)
    for layer in range(L):
        assert abs(scene.arcs[(layer, 10)] - 0.9) <= drift(np.float32, 2, 0.9)
        assert abs(scene.arcs[(layer, 12)] - 0.08) <= drift(np.float32, 2, 0.08)
    assert scene.slot_of(12) == 2 and scene.slot_of(10) == 2  # the sink, older than the path
    # a trace's window that no longer covers the sink still gives it, from attn_sink
    windowed = synthetic_frame(14, np.ones((L + 1, D)), np.ones((L, 20)), attn[:, :, 2:],
                               context_start=10)  # fmt: skip
    windowed = replace(windowed, attn_sink=np.full((L, H), 0.9, np.float32))
    scene.ingest(windowed)
    assert {p for _, p in scene._arc_targets} == {10, 12}


def test_values_ease_toward_the_newest_frame_and_a_new_answer_resets():
    scene = SceneState(LookSettings(ease_s=0.1))
    attn = np.full((L, H, 3), 1 / 3)
    scene.ingest(frame(2, np.ones((L + 1, D)), attn))
    scene.advance(0.05)
    assert 0 < scene.head < 2 and scene.pulse < 1  # part of the way, not a jump
    scene.advance(5.0)
    assert abs(scene.head - 2) <= drift(np.float64, 2, 2.0)  # eased in float64: exp(-50) left
    scene.ingest(frame(0, np.ones((L + 1, D)), np.ones((L, H, 1))))
    assert [t.index for t in scene.tokens] == [0]


def test_node_colour_is_the_mlp_s_share_of_the_node_s_own_dimensions():
    """Block 1's MLP writes only into dims 4..5 (node 2 of 5 over d = 10): that node turns warm
    by exactly its share of the stream there; the other nodes of the ring, and every node of
    the other rings, stay cold; the embedding's ring has no MLP."""
    scene = SceneState(LookSettings(nodes_per_layer=5, hue="mlp"))
    hidden = np.ones((L + 1, D))
    write = np.zeros((L, D))
    write[1, 4:6] = 0.3  # 30 % of a stream of ones
    scene.ingest(synthetic_frame(3, hidden, np.ones((L, 20)), np.full((L, H, 4), 0.25),
                                 mlp_write=write))  # fmt: skip
    scene.advance(10.0)
    expected = np.log(0.3 / SHARE_FLOOR) / np.log(1 / SHARE_FLOOR)  # 30 % on the 10 %…100 % scale
    # row 2 = block 1's output; a float32 hue from a share and a log: a few roundings
    assert scene.hue[2, 2] == pytest.approx(expected, rel=float(drift(np.float32, 4)), abs=0)
    hue = scene.hue.copy()
    hue[2, 2] = 0
    assert not hue.any()


def test_printed_numbers_are_the_frame_s_not_eased_ones():
    scene = SceneState(LookSettings(ease_s=1.0))
    probs = np.array([0.5, 0.25, 0.125] + [0.01] * 7, np.float32)
    scene.ingest(synthetic_frame(0, np.ones((L + 1, D)), np.ones((L, 20)), np.ones((L, H, 1)),
                                 topk_probs=probs))  # fmt: skip
    scene.advance(0.1)  # the bars are on their way
    rows = scene.candidate_rows(3)
    assert [printed for _, _, printed in rows] == ["50%", "25%", "12%"]
    assert all(bar < p for (_, bar, _), p in zip(rows, probs, strict=False))


def test_a_printed_probability_never_rounds_to_nothing_or_to_certainty():
    """Whole percent, as on screen; a vocabulary-wide spread (a random model's 0.002 %) is
    "<1%", a near-certain 99.7 % ">99%"; only exact 0 and 1 print as 0 % and 100 %."""
    assert [percent(p) for p in (0.0, 2e-5, 0.0049, 0.0051, 0.5, 0.994, 0.997, 1.0)] == [
        "0%", "<1%", "<1%", "1%", "50%", "99%", ">99%", "100%"]  # fmt: skip
    scene = SceneState(LookSettings())
    probs = np.array([0.9971] + [2e-5] * 9, np.float32)
    scene.ingest(synthetic_frame(0, np.ones((L + 1, D)), np.ones((L, 20)), np.ones((L, H, 1)),
                                 topk_probs=probs))  # fmt: skip
    assert [printed for _, _, printed in scene.candidate_rows(2)] == [">99%", "<1%"]
