"""The logit lens: what the residual stream after each lensed block would say next, read
through the model's own final norm and unembedding. Which rows are read (`lens_rows`), how a
row is made ready for the unembedding (`lens_input`), and its logits turned into top words
(`lens_words`). Under the capture's hooks the rows ride along with the model's own
unembedding in one product (Recorder, model/unembed.py); `logit_lens` is the lens for a model
run outside them (nnsight).
"""

import torch

FLOOR = -80.0  # exp(-80) ≈ 1.8e-35: still a normal float32
OWN_ANSWER = -2  # lens id of a last row that the model's own logits fill (-1: not lensed)


def lens_rows(layers: int, every: int) -> tuple[int, ...]:
    """The rows of a model with `layers` blocks that the lens reads: every `every`th from the
    embedding up, and always the last (the model's own answer); none when `every` is 0."""
    if every <= 0:
        return ()
    return tuple(sorted({*range(0, layers + 1, every), layers}))


def unembedded_rows(rows: tuple[int, ...], layers: int) -> tuple[int, ...]:
    """The lensed rows that go through the unembedding: all but the last block's output,
    whose words the model's own logits give exactly (Recorder.take, generate.summarized)."""
    return rows[:-1] if rows[-1:] == (layers,) else rows


def lens_input(x: torch.Tensor, parts) -> torch.Tensor:
    """Lensed rows of the residual stream [..., n, d] as the unembedding takes them: on its
    device, in its dtype, through the model's own final norm."""
    weight = parts.unembed.weight
    x = x.to(weight.device, weight.dtype)
    return parts.final_norm(x) if parts.final_norm is not None else x


def lens_logits(hidden: torch.Tensor, parts, rows: tuple[int, ...]) -> torch.Tensor:
    """`rows` of the residual stream [..., L+1, d] through the model's own final norm and
    unembedding: logits [..., n, V], exact (the model's own precision)."""
    return parts.unembed(lens_input(hidden[..., list(rows), :], parts))


def lens_words(
    logits: torch.Tensor | None, parts, rows: tuple[int, ...], shape: tuple[int, int], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The top `k` tokens and probabilities [S, L+1, k] of the lensed `rows`' logits
    [S, n, V] (through the final softcap), in a `shape` (S, L+1) of -1 and 0 elsewhere."""
    ids = torch.full((*shape, k), -1, dtype=torch.int32)
    probs = torch.zeros(*shape, k)
    if not rows or logits is None:
        return ids, probs
    logits = _softcapped(logits.float(), parts.final_softcap)
    top = logits.topk(k, dim=-1)
    ids[:, list(rows)] = top.indices.to(torch.int32).cpu()
    probs[:, list(rows)] = (top.values - _logsumexp(logits)).exp().cpu()
    return ids, probs


def logit_lens(
    hidden: torch.Tensor, parts, rows: tuple[int, ...], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What each of `rows` of the residual stream [S, L+1, d] would say next: its top `k`
    tokens and their probabilities, [S, L+1, k] each (-1 and 0 for rows not lensed). For a
    model run outside the capture's hooks (nnsight); under them the rows ride along with the
    model's own unembedding (Recorder.take)."""
    logits = lens_logits(hidden, parts, rows) if rows else None
    return lens_words(logits, parts, rows, hidden.shape[:2], k)


def _logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """log Σ exp over the last dim, kept. torch's own took 7.5 ms for the lens's [1, 9, 49152]
    on a CPU (a tenth of a SmolLM2 token): most of a vocabulary lies over 87 below the best
    logit, where exp() returns denormals, and those are slow. Terms below FLOOR are taken at
    FLOOR: each adds under 2e-35 of the largest, nothing a float32 sum can hold."""
    top = logits.amax(dim=-1, keepdim=True)
    return top + (logits - top).clamp(min=FLOOR).exp().sum(dim=-1, keepdim=True).log()


def _softcapped(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    return torch.tanh(logits / cap) * cap if cap else logits
