"""The captured internals of the real SmolLM2 equal one eager full-sequence pass of transformers,
within the float32 rounding the two paths allow (tests/tolerance.py), with torch on 1 thread and
on 2 (the torch_threads fixture: every test here runs under each)."""

import numpy as np
import pytest
import torch

from tests.test_families import (
    assert_attention_matches,
    assert_candidates_follow_the_logits,
    assert_hidden_matches,
    eager_reference,
)
from tests.tolerance import drift, forward_terms, sizes
from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.model.generate import generate_frames

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_threads")]

PROMPT = "Explain in one sentence why the sky is blue."


@pytest.fixture(scope="module")
def greedy_frames(smollm2, torch_threads):
    gen = GenerationSettings(temperature=0.0, max_tokens=16)
    return list(generate_frames(smollm2, PROMPT, gen, CaptureSettings(prefill_chunk=7)))


def _reference(model, ids: list[int]):
    """Eager attention, output_attentions, block outputs by forward hooks: one full pass."""
    seen = eager_reference(model, ids)
    return seen["hidden"], seen["attn"]


def test_generated_ids_match_generate(smollm2, greedy_frames):
    n_prompt = sum(f.is_prompt for f in greedy_frames)
    prompt_ids = [f.token_id for f in greedy_frames[:n_prompt]]
    ours = [f.token_id for f in greedy_frames[n_prompt:]]
    with torch.no_grad():
        ref = smollm2.model.generate(
            torch.tensor([prompt_ids]), max_new_tokens=16, do_sample=False,
            attention_mask=torch.ones(1, n_prompt, dtype=torch.long),
        )[0, n_prompt:].tolist()  # fmt: skip
    assert len(ours) >= 2
    assert ours == ref


def test_hidden_and_attention_match_eager_full_pass(smollm2, greedy_frames):
    ids = [f.token_id for f in greedy_frames]
    ref_hidden, ref_attn = _reference(smollm2.model, ids)
    config = smollm2.model.config
    for t, frame in enumerate(greedy_frames):
        assert frame.context_start == 0
        assert_hidden_matches(frame.hidden, ref_hidden[t], config, t + 1, (t,))
        assert frame.attn.shape[-1] == t + 1
        assert_attention_matches(frame.attn, ref_attn[t, :, :, : t + 1], config, (t,))
    assert np.abs(ref_attn[:, :, :, :]).sum() > 0


def test_mlp_activation_is_the_down_projections_input(smollm2, greedy_frames):
    """SwiGLU: act(gate(x)) * up(x), with x the normed residual after attention, per block."""
    frame = greedy_frames[-1]
    assert frame.mlp.shape == (30, 1536)
    block = smollm2.model.model.layers[3]
    seen = {}
    h = block.mlp.register_forward_hook(lambda m, a, o: seen.setdefault("x", a[0]))
    try:
        _reference(smollm2.model, [f.token_id for f in greedy_frames])
    finally:
        h.remove()
    x = seen["x"][0, -1]
    with torch.no_grad():
        expected = (block.mlp.act_fn(block.mlp.gate_proj(x)) * block.mlp.up_proj(x)).numpy()
    # the stream after 3 blocks, then block 3's o_proj and gate/up: 2 more sums over d
    d, *_ = sizes(smollm2.model.config)
    terms = forward_terms(smollm2.model.config, 3, len(greedy_frames)) + 2 * d
    tol = drift(np.float32, terms, np.abs(expected).max())
    assert np.abs(frame.mlp[3] - expected).max() <= tol


def test_topk_and_entropy_equal_those_of_the_full_pass_logits(smollm2, greedy_frames):
    ref = eager_reference(smollm2.model, [f.token_id for f in greedy_frames])
    assert_candidates_follow_the_logits(greedy_frames, ref["logits"], smollm2.model.config)


def test_topk_and_entropy_follow_the_logits(smollm2, greedy_frames):
    n_prompt = sum(f.is_prompt for f in greedy_frames)
    for frame, nxt in zip(greedy_frames[n_prompt - 1 : -1], greedy_frames[n_prompt:], strict=True):
        assert frame.topk_ids[0] == nxt.token_id  # greedy picks the top candidate
        assert np.all(np.diff(frame.topk_probs) <= 0)
        # float32 shares of a float32 normaliser (a sum over the vocabulary), summed here:
        # at most 1 within the rounding of those two sums
        terms = smollm2.model.config.vocab_size + len(frame.topk_probs)
        assert 0 < frame.topk_probs.sum() <= 1.0 + drift(np.float32, terms)
        assert 0 <= frame.entropy < np.log(49152)
    text = "".join(f.text for f in greedy_frames[n_prompt:])
    assert "blue" in text.lower() or "scatter" in text.lower() or len(text) > 20
