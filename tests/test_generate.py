"""The per-token loop on tiny random models: shapes, sampling, seeds, overflow, odd prompts."""

import numpy as np
import pytest

from tests.tolerance import drift
from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.errors import UserError
from visualizer.model.generate import generate_frames

CAP = CaptureSettings()


def _run(lm, prompt="Hello there", **gen):
    notes = []
    gen.setdefault("max_tokens", 8)
    frames = list(generate_frames(lm, prompt, GenerationSettings(**gen), CAP, notice=notes.append))
    return frames, notes


@pytest.mark.parametrize(
    "name,layers,heads,d,d_ff", [("tiny_llama", 3, 4, 32, 64), ("tiny_gpt2", 2, 4, 32, 128)]
)
def test_frame_shapes(request, name, layers, heads, d, d_ff):
    lm = request.getfixturevalue(name)
    frames, _ = _run(lm, raw=True)
    n_prompt = sum(f.is_prompt for f in frames)
    assert n_prompt >= 2 and len(frames) - n_prompt <= 8
    for i, f in enumerate(frames):
        assert f.index == i
        assert f.hidden.shape == (layers + 1, d)
        assert f.mlp.shape == (layers, d_ff)
        assert f.attn.shape == (layers, heads, i + 1)
        # a float32 softmax's normaliser over i + 1 positions, and the sum here: 2(i + 1) terms
        np.testing.assert_allclose(f.attn.sum(-1), 1.0, atol=drift(np.float32, 2 * (i + 1)))
        assert f.topk_ids.shape == f.topk_probs.shape == (10,)
        assert not f.hidden.flags.writeable
    assert [f.is_prompt for f in frames] == [True] * n_prompt + [False] * (len(frames) - n_prompt)


def test_gqa_heads_sharing_a_kv_head_differ(tiny_llama):
    """4 query heads over 2 KV heads: each query head still has its own attention row."""
    frames, _ = _run(tiny_llama, max_tokens=3)
    attn = frames[-1].attn  # [L, H, n]
    assert not np.allclose(attn[:, 0], attn[:, 1])


def test_greedy_is_reproducible_and_seeds_matter(tiny_llama):
    ids = lambda **g: [f.token_id for f in _run(tiny_llama, max_tokens=12, **g)[0]]  # noqa: E731
    assert ids(temperature=0) == ids(temperature=0, seed=5)
    assert ids(temperature=1.5, seed=1) == ids(temperature=1.5, seed=1)
    assert ids(temperature=1.5, seed=1) != ids(temperature=1.5, seed=2)


def test_greedy_takes_the_top_candidate(tiny_llama):
    frames, _ = _run(tiny_llama, temperature=0, max_tokens=6)
    for before, after in zip(frames[:-1], frames[1:], strict=True):
        if not after.is_prompt:
            assert after.token_id == before.topk_ids[0]


def test_top_k_one_equals_greedy(tiny_llama):
    greedy = [f.token_id for f in _run(tiny_llama, temperature=0)[0]]
    topk1 = [f.token_id for f in _run(tiny_llama, temperature=1.0, top_k=1)[0]]
    assert greedy == topk1


def test_context_overflow_slides_instead_of_crashing(tiny_llama):
    """64 positions; 150 tokens slide the view and keep every frame well formed."""
    frames, _ = _run(tiny_llama, temperature=1.0, max_tokens=150, context=1024)
    generated = [f for f in frames if not f.is_prompt]
    assert len(generated) == 150
    assert max(f.context_start for f in frames) > 0
    for f in frames:
        assert f.attn.shape[-1] == f.index - f.context_start + 1 <= 64


def test_after_a_slide_frames_equal_a_fresh_pass_over_the_kept_window(tiny_llama, torch_threads):
    """Once the view has slid, a frame is what one eager pass over the positions it keeps
    (context_start to itself) gives at its last position: hidden states, attention, logits,
    within float32's rounding on the two paths (tests/tolerance.py), on 1 thread and on 2."""
    from tests.test_families import (
        assert_attention_matches,
        assert_candidates_follow_the_logits,
        assert_hidden_matches,
        eager_reference,
    )

    frames, _ = _run(tiny_llama, temperature=0.0, max_tokens=100)
    ids = [f.token_id for f in frames]
    slid = [f for f in frames if f.context_start > 0]
    assert len({f.context_start for f in slid}) >= 2  # slid more than once
    for frame in slid:
        ref = eager_reference(tiny_llama.model, ids[frame.context_start : frame.index + 1])
        config, n = tiny_llama.model.config, frame.attn.shape[-1]
        assert_hidden_matches(frame.hidden, ref["hidden"][-1], config, n, (frame.index,))
        assert_attention_matches(frame.attn, ref["attn"][-1], config, (frame.index,))
        assert_candidates_follow_the_logits([frame], ref["logits"][-1:], config, n)


def test_long_prompt_keeps_its_tail(tiny_llama):
    frames, notes = _run(tiny_llama, prompt="word " * 10_000, raw=True, max_tokens=2)
    assert sum(f.is_prompt for f in frames) == 32
    assert notes and "keeping its last 32" in notes[0]


def test_emoji_and_control_characters_round_trip(tiny_llama):
    prompt = "🙂🧠 naïve\x07\x1b[31m\ttab\n日本語 🏳️‍🌈"
    frames, _ = _run(tiny_llama, prompt=prompt, raw=True, max_tokens=4)
    n_prompt = sum(f.is_prompt for f in frames)
    text = "".join(f.text for f in frames[:n_prompt])
    decoded = tiny_llama.tokenizer.decode([f.token_id for f in frames[:n_prompt]])
    assert text == decoded and prompt in text


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_prompt_is_refused(tiny_llama, prompt):
    with pytest.raises(UserError, match="empty"):
        _run(tiny_llama, prompt=prompt)


def test_chat_template_wraps_the_prompt(tiny_llama):
    frames, _ = _run(tiny_llama, prompt="Hi", max_tokens=1)
    text = "".join(f.text for f in frames if f.is_prompt)
    assert "<|im_start|>user\nHi<|im_end|>" in text
    raw, _ = _run(tiny_llama, prompt="Hi", raw=True, max_tokens=1)
    assert "".join(f.text for f in raw if f.is_prompt) == "Hi"
