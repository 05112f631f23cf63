"""Tolerances from the arithmetic: how far two computations of one number may differ by
rounding alone, from the dtype's machine epsilon and how many rounded operations accumulate.

eps (np.finfo, torch.finfo): float32 2^-23, float16 2^-10, bfloat16 2^-7. A value of size m
stored in a dtype is within eps/2 · m of itself. Two computations of one value that each round
n times in their own order (another kernel, another thread count, the prompt in chunks against
one pass, a KV cache against none) differ by two sums of n rounding errors. Their signs are
independent, so each sum grows like √n rather than n: within λ·√n·eps/2·m except with
probability 2·exp(-λ²/2) (Higham & Mary, "A new approach to probabilistic rounding error
analysis", SIAM J. Sci. Comput. 41, 2019). λ = 4 on each side (a miss under 7e-4) makes the
two differ by at most ULPS · √n · eps · m, ULPS = 4. The worst case, n · eps · m, needs every
rounding to fall the same way; for SmolLM2's logits (n ≈ 100,000, m ≈ 38) it is 0.45, which
would let any temperature pass for 1 (0.9 moves its probabilities by up to 30 %); the √n
bound is 5.7e-3, and the drift measured (1 and 2 threads; prompt in chunks, token by token
and in one pass) at most 1.1e-4.
"""

import math

import numpy as np
import torch

ULPS = 4.0  # λ = 4 on each of the two sides compared: 2 · 4 · eps/2


def eps(dtype) -> float:
    """Machine epsilon of a numpy or torch float dtype."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def drift(dtype, terms: int = 1, magnitude=1.0):
    """How far two computations in `dtype` of a value of size `magnitude` may differ when each
    accumulates `terms` rounded operations in its own order: ULPS · eps · √terms · magnitude
    (an array of magnitudes gives an array)."""
    return ULPS * eps(dtype) * math.sqrt(terms) * np.asarray(magnitude, np.float64)


def sizes(config) -> tuple[int, int, int, int]:
    """hidden_size, intermediate_size (an MLP's inner width; GPT-2's n_inner or 4 × its
    width), head_dim and block count of a transformers config."""
    c = config.get_text_config()
    d = c.hidden_size
    d_ff = getattr(c, "intermediate_size", None) or getattr(c, "n_inner", None) or 4 * d
    head_dim = getattr(c, "head_dim", None) or d // c.num_attention_heads
    return d, d_ff, head_dim, c.num_hidden_layers


def forward_terms(config, blocks: int | None = None, positions: int = 0) -> int:
    """Rounded operations on the residual stream's path through `blocks` blocks (all if None)
    of a model attending over `positions`: in each block v_proj, o_proj and the MLP's gate and
    up projections are sums over hidden_size terms (three in sequence), the attention a sum
    over the positions and down_proj one over intermediate_size. SmolLM2 over 56 positions:
    30 × (3 · 576 + 1536 + 56) = 99,600, √ ≈ 316."""
    d, d_ff, _, layers = sizes(config)
    return (layers if blocks is None else blocks) * (3 * d + d_ff + positions)


def softmax_drift(logit_drift, vocab: int):
    """How far log p of a float32 softmax over `vocab` inputs may move when each input may
    move by `logit_drift`: log p_i = z_i − log Σ exp z moves by 2 · logit_drift at most, and
    the float32 sum over `vocab` terms adds drift(float32, vocab) of its own. A probability p
    then moves by p times this (first order: the drifts here are under 1e-2)."""
    return 2 * np.asarray(logit_drift, np.float64) + drift(np.float32, vocab)


def lens_dlogp(lm, hidden: np.ndarray, terms: int | None = None) -> np.ndarray:
    """How far log p of the words lensed from residual-stream rows [..., d] may differ
    between two float32 computations of the lens (other rows in the product, another
    product): the final norm and the unembedding are sums over d (2d terms, or `terms` when
    the rows themselves differ), at the size of the row's largest logit, then the softmax
    over the vocabulary (tolerance.softmax_drift). Shape [..., 1]."""
    parts = lm.parts
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(hidden, np.float32))
        x = parts.final_norm(x) if parts.final_norm is not None else x
        logits = parts.unembed(x).float()
        if parts.final_softcap:
            logits = torch.tanh(logits / parts.final_softcap) * parts.final_softcap
    size = logits.abs().amax(dim=-1, keepdim=True).numpy()
    return softmax_drift(drift(np.float32, terms or 2 * hidden.shape[-1], size), logits.shape[-1])


def assert_within(actual, desired, tol, where=()) -> None:
    """|actual − desired| ≤ tol elementwise (tol broadcast over them: a tolerance per value,
    which np.testing.assert_allclose does not take)."""
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(desired, np.float64))
    tol = np.broadcast_to(np.asarray(tol, np.float64), err.shape)
    off = err > tol
    if off.any():
        i = np.unravel_index(np.argmax(np.where(off, err - tol, -np.inf)), err.shape)
        raise AssertionError(f"{(*where,)}: {off.sum()} of {off.size} values off by more than "
                             f"their tolerance; at {i}: {err[i]:.3g} against {tol[i]:.3g}")
