"""Where things stand in the 3D scene (world units; y is up).

The model is a tower: row 0 (the embedding) at the bottom, each block's output one storey
higher, every row a ring of nodes with a slight twist per storey so the links between rows
weave a web. The token history is a path on the floor circling the tower: the newest token
in front (toward +z), older ones receding clockwise. Attention arcs leave the tower at their
layer's height and land on the tokens they attend to.
"""

import math

import numpy as np

TOWER_HEIGHT = 2.6
RING_RADIUS = 0.75
TWIST = 0.09  # radians per storey
PATH_RADIUS = 1.65
PATH_Y = -TOWER_HEIGHT / 2 - 0.3
PATH_SPAN = 1.75 * math.pi  # angle the whole history spans
FRONT = math.pi / 2  # the newest token's angle (toward +z)


def row_height(rows: int) -> np.ndarray:
    return np.linspace(-TOWER_HEIGHT / 2, TOWER_HEIGHT / 2, rows, dtype=np.float32)


def node_positions(rows: int, nodes: int) -> np.ndarray:
    """[rows, nodes, 3]"""
    angle = 2 * np.pi * np.arange(nodes)[None, :] / nodes + TWIST * np.arange(rows)[:, None]
    y = np.broadcast_to(row_height(rows)[:, None], angle.shape)
    pos = np.stack([RING_RADIUS * np.cos(angle), y, RING_RADIUS * np.sin(angle)], axis=-1)
    return pos.astype(np.float32)


def link_pairs(rows: int, nodes: int, fanout: int) -> np.ndarray:
    """[links, 2] flat node indices (row * nodes + j): each node to `fanout` neighbours above."""
    if fanout == 0 or rows < 2:
        return np.zeros((0, 2), np.int32)
    offsets = np.arange(fanout) - (fanout - 1) // 2  # e.g. -1, 0, 1
    row = np.arange(rows - 1)[:, None, None]
    j = np.arange(nodes)[None, :, None]
    below = row * nodes + j
    above = (row + 1) * nodes + (j + offsets[None, None, :]) % nodes
    pairs = np.stack(np.broadcast_arrays(below, above), axis=-1)  # [rows-1, nodes, fanout, 2]
    return pairs.reshape(-1, 2).astype(np.int32)


def path_angle(slot: np.ndarray, history: int) -> np.ndarray:
    """Angle of a token `slot` places behind the newest (fractional while scrolling)."""
    return FRONT - slot * (PATH_SPAN / history)


def path_positions(slots: np.ndarray, history: int) -> np.ndarray:
    """[n, 3] floor positions of tokens `slots` places behind the newest."""
    angle = path_angle(slots, history)
    spiral = PATH_RADIUS + 0.004 * slots  # a gentle spiral, so the ends do not meet
    return np.stack(
        [spiral * np.cos(angle), np.full_like(angle, PATH_Y), spiral * np.sin(angle)], axis=-1
    ).astype(np.float32)
