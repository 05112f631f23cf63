"""The quantities that several scenes, the sound and the labels show, each computed once here
from a frame, with what it means in its name. Every visual channel of the table in
docs/channels.md reads one of these.

- `residual_norm`: ‖h‖, the residual stream's L2 norm at the embedding and after each block.
- `update_ratio`: ‖h_out − h_in‖ ÷ ‖h_in‖, how much a block changed the stream it read (its
  attention and MLP writes together), relative to that stream.
- `mlp_share`: ‖MLP write‖ ÷ ‖h_out‖, the MLP's write as a share of the stream after its block.
- `node_mlp_share`: the same per node: the MLP write's RMS over a node's group of residual
  dimensions ÷ the stream's RMS over the same group (node j of a row is dimensions group j).
- `attention_share`: the newest token's attention, averaged over heads, per earlier position,
  including the first position in view (the "attention sink"); nothing is renormalised.
"""

import numpy as np

from visualizer.frame import Frame

EPS = 1e-6


def group_rms(x: np.ndarray, groups: int) -> np.ndarray:
    """[rows, width] → [rows, groups]: RMS over contiguous, nearly equal groups of columns
    (groups ≤ width)."""
    width = x.shape[-1]
    starts = (np.arange(groups) * width) // groups  # [groups]
    counts = np.diff(np.append(starts, width))
    sums = np.add.reduceat(np.square(x, dtype=np.float64), starts, axis=-1)
    return np.sqrt(sums / counts).astype(np.float32)


def residual_norm(frame: Frame) -> np.ndarray:
    """[L+1]: ‖h‖ at the embedding and after each block."""
    return np.linalg.norm(frame.hidden.astype(np.float64), axis=1)


def update_ratio(frame: Frame) -> np.ndarray:
    """[L]: ‖h_out − h_in‖ ÷ ‖h_in‖ per block."""
    h = frame.hidden.astype(np.float64)
    return np.linalg.norm(h[1:] - h[:-1], axis=1) / (np.linalg.norm(h[:-1], axis=1) + EPS)


def mlp_share(frame: Frame) -> np.ndarray:
    """[L]: ‖MLP write‖ ÷ ‖h_out‖ per block (0 for a trace that kept no MLP write)."""
    write = np.linalg.norm(frame.mlp_write.astype(np.float64), axis=1)
    return write / (residual_norm(frame)[1:] + EPS)


def node_mlp_share(frame: Frame, groups: int) -> np.ndarray:
    """[L, groups]: per node, the MLP write's RMS over its group of residual dimensions ÷ the
    stream's RMS over the same dimensions after the block."""
    return group_rms(frame.mlp_write, groups) / (group_rms(frame.hidden[1:], groups) + EPS)


def attention_share(frame: Frame) -> tuple[np.ndarray, np.ndarray, float]:
    """The newest token's head-averaged attention over the earlier positions it has:
    (positions [n], shares [L, n], and the sink's position), the sink included even where a
    trace's window no longer covers it. Its attention to itself is left out."""
    shares = frame.attn.astype(np.float64).mean(axis=1)[:, :-1]  # [L, n-1], itself left out
    positions = np.arange(frame.attn_first, frame.index)
    if frame.attn_first > frame.context_start:  # the window lost the sink: add it back
        sink = frame.attn_sink.astype(np.float64).mean(axis=1)[:, None]
        shares = np.concatenate([sink, shares], axis=1)
        positions = np.concatenate([[frame.context_start], positions])
    return positions, shares, frame.context_start


def log_fraction(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """values on a log scale, low → 0 and high → 1, clipped."""
    ratio = np.log(np.maximum(values, EPS) / low) / np.log(high / low)
    return np.clip(ratio, 0.0, 1.0).astype(np.float32)
