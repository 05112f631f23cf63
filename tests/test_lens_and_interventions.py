"""The logit lens and interventions with their ghost, on tiny models and the real SmolLM2:
the lens's last row is the model's own answer; an ablation changes nothing before its block
and something at it; a steering scale of zero changes nothing, a real one moves a chosen word;
the ghost is a plain run; a trace keeps it all."""

import numpy as np
import pytest
import torch

from tests.families import FAMILIES
from tests.test_cli import _assert_user_error, neuroweb, neuroweb_here
from tests.tolerance import assert_within, drift, forward_terms, lens_dlogp, sizes
from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.interventions import Interventions, interventions_from, parse_ablation
from visualizer.model.generate import generate_frames
from visualizer.trace import frames_from_trace, read_trace

PROMPT = "Tell me about the sea, please."
EVERY = CaptureSettings(lens_every=1, lens_prompt="all")  # every layer, every position


def _run(lm, ablate=(), steer=(), ghost=True, **gen):
    settings = GenerationSettings(**{"max_tokens": 8, "temperature": 0.9, "seed": 3, **gen})
    iv = interventions_from(tuple(ablate), tuple(steer))
    return list(generate_frames(lm, PROMPT, settings, EVERY, interventions=iv, ghost=ghost))


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_the_lens_at_the_last_layer_is_the_model_s_own_top_k(family, family_dir, torch_threads):
    from visualizer.model.load import load_model

    lm = load_model(str(family_dir(family)))
    for frame in _run(lm):
        k = frame.lens_ids.shape[1]
        assert np.array_equal(frame.lens_ids[-1], frame.topk_ids[:k])
        # copied from the same float32 numbers (generate.summarized): no rounding between
        assert np.array_equal(frame.lens_probs[-1], frame.topk_probs[:k])
        assert (frame.lens_ids[:, 0] >= 0).all()  # every layer lensed (lens_every = 1)
        assert frame.lens_text[-1] == frame.topk_text[0]
        # the last row is taken from the model's logits, not lensed: the plain lens agrees
        parts = lm.parts
        with torch.no_grad():
            x = parts.final_norm(torch.from_numpy(frame.hidden[-1:].astype(np.float32)))
            logits = parts.unembed(x).float()
            if parts.final_softcap:
                logits = torch.tanh(logits / parts.final_softcap) * parts.final_softcap
            plain = torch.softmax(logits, dim=-1)[0].numpy()
        # one row through the final norm and unembedding here, all rows in the model's pass
        dlogp = lens_dlogp(lm, frame.hidden[-1]).item()
        np.testing.assert_allclose(frame.lens_probs[-1], plain[frame.lens_ids[-1]], rtol=dlogp)
        kth = np.sort(plain)[-k]  # its top k: none below the k-th by more than rounding
        assert plain[frame.lens_ids[-1]].min() >= kth * (1 - dlogp)


def test_a_lens_keeping_more_words_than_the_candidates_fills_its_last_row(tiny_llama):
    """capture.lens_candidates may exceed capture.candidates (20 against 10): the last row
    still holds the model's own top 20, and the frame its top 10."""
    cap = CaptureSettings(lens_every=1, lens_candidates=20, lens_prompt="all")
    for frame in generate_frames(tiny_llama, PROMPT, GenerationSettings(max_tokens=3), cap):
        assert frame.lens_ids.shape[1] == 20 and len(frame.topk_ids) == 10
        assert np.array_equal(frame.lens_ids[-1, :10], frame.topk_ids)
        assert (np.diff(frame.lens_probs[-1]) <= 0).all() and (frame.lens_ids[:, 0] >= 0).all()


def test_the_ghost_s_lens_ends_in_the_ghost_s_own_answer(tiny_llama):
    """The untouched run beside an ablation gets its last lens row from its own logits too."""
    ghosts = [f.ghost for f in _run(tiny_llama, ablate=["mlp:1"]) if f.ghost is not None]
    assert ghosts
    for ghost in ghosts:
        k = ghost.lens_ids.shape[1]
        assert np.array_equal(ghost.lens_ids[-1], ghost.topk_ids[:k])
        assert np.array_equal(ghost.lens_probs[-1], ghost.topk_probs[:k])  # the same numbers
        assert (ghost.lens_ids[:, 0] >= 0).all()


def test_by_default_the_prompt_is_lensed_at_its_last_position_only(tiny_llama):
    """capture.lens_prompt "last": of the prompt's positions only the last, whose answer is the
    first word, goes through the lens (the others show for a frame at most), with the words
    and probabilities that lensing every position gives; every position keeps the model's own
    answer as its last row, and every generated token is lensed. Over several prefill chunks
    the earlier chunks are not lensed at all."""
    gen = GenerationSettings(max_tokens=3, temperature=0.0)
    for chunk in (64, 5):  # the prompt in one pass, and in several
        last, every = (list(generate_frames(tiny_llama, PROMPT, gen, CaptureSettings(
            lens_every=1, prefill_chunk=chunk, lens_prompt=kept))) for kept in ("last", "all"))
        prompt = [f for f in last if f.is_prompt]
        assert len(prompt) > chunk or chunk == 64
        for frame in prompt[:-1]:
            assert (frame.lens_ids[:-1, 0] == -1).all() and (frame.lens_probs[:-1] == 0).all()
            assert np.array_equal(frame.lens_ids[-1], frame.topk_ids[: frame.lens_ids.shape[1]])
        for a, b in zip(last[len(prompt) - 1 :], every[len(prompt) - 1 :], strict=True):
            assert (a.lens_ids[:, 0] >= 0).all()
            assert np.array_equal(a.lens_ids, b.lens_ids) and a.text == b.text
            # one stream, lensed in a product of other rows
            tol = b.lens_probs * lens_dlogp(tiny_llama, b.hidden)
            assert_within(a.lens_probs, b.lens_probs, tol)


def test_the_default_lens_reads_every_fourth_layer_and_the_last(tiny_llama):
    frame = list(generate_frames(tiny_llama, PROMPT, GenerationSettings(max_tokens=2),
                                 CaptureSettings()))[-1]  # fmt: skip
    assert [r for r in range(4) if frame.lens_ids[r, 0] >= 0] == [0, 3]  # 3 blocks: 0, and 3


@pytest.mark.parametrize("block", [0, 1, 2])
def test_ablating_an_mlp_changes_nothing_before_its_block_and_changes_it(tiny_llama, block):
    plain = _run(tiny_llama, temperature=0.0)
    changed = _run(tiny_llama, ablate=[f"mlp:{block}"], temperature=0.0)
    first = changed[0]  # the first prompt token: the same input in both runs
    assert np.array_equal(first.hidden[: block + 1], plain[0].hidden[: block + 1])  # bit for bit
    assert not np.allclose(first.hidden[block + 1], plain[0].hidden[block + 1])
    assert not first.mlp_write[block].any()  # what the stream received: nothing
    assert first.changed == (f"mlp:{block}",)


def test_ablating_attention_or_one_head_changes_that_block_and_says_so(tiny_llama):
    """`attn:1` and `head:1.2` each leave the stream before block 1 as it was and change it
    at block 1; one head is not the whole attention, and every head of the block is: a head
    is its slice of the output projection's input zeroed, and the tiny Llama's o_proj has no
    bias, so all four slices zeroed make its output exactly the zero `attn:1` gives."""
    assert tiny_llama.parts.attn_outs[1].bias is None  # what makes "every head" = "attn" exact
    heads = tiny_llama.architecture.block[1].heads
    plain = _run(tiny_llama, temperature=0.0)[3]
    ran = {}
    for spec in ("attn:1", "head:1.2"):
        frame = ran[spec] = _run(tiny_llama, ablate=[spec], temperature=0.0)[3]
        assert np.array_equal(frame.hidden[:2], plain.hidden[:2])
        assert not np.allclose(frame.hidden[2], plain.hidden[2]) and frame.changed == (spec,)
    one, attention = ran["head:1.2"].hidden[2:], ran["attn:1"].hidden[2:]
    assert not np.allclose(one, attention)  # one head of four is not all of them
    every = [f"head:1.{h}" for h in range(heads)]
    frame = _run(tiny_llama, ablate=every, temperature=0.0)[3]
    assert frame.changed == tuple(every)
    assert np.array_equal(frame.hidden, ran["attn:1"].hidden)  # bit for bit, every layer


def test_a_steering_scale_of_zero_changes_nothing_and_a_real_one_changes_its_block_on(
        tiny_llama):  # fmt: skip
    """Scale 0 gives the plain run bit for bit. Scale 1 (so steering does something at all)
    leaves each prompt position's embedding and block 0 as they were, and changes the stream
    after block 1, where the vector is added, and every block after it."""
    plain = _run(tiny_llama)
    steered = _run(tiny_llama, steer=["1:0:Love|Hate"], ghost=False)
    for a, b in zip(steered, plain, strict=True):
        assert a.token_id == b.token_id and np.array_equal(a.hidden, b.hidden)
    steered = [f for f in _run(tiny_llama, steer=["1:1:Love|Hate"], ghost=False) if f.is_prompt]
    assert steered and all(f.changed == ("steer 1:1:Love|Hate",) for f in steered)
    for a, b in zip(steered, plain, strict=False):  # the prompt: the same tokens in both
        assert a.token_id == b.token_id and np.array_equal(a.hidden[:2], b.hidden[:2])
        for row in range(2, len(a.hidden)):  # after block 1, block 2, the final one
            assert not np.allclose(a.hidden[row], b.hidden[row]), row


def test_the_ghost_is_a_plain_run_with_the_same_seed(tiny_llama, torch_threads):
    plain = _run(tiny_llama)
    changed = _run(tiny_llama, ablate=["mlp:0", "head:2.1"])
    assert [f.ghost.token_id for f in changed] == [f.token_id for f in plain]
    for frame, reference in zip(changed, plain, strict=True):
        g = frame.ghost
        assert np.array_equal(g.topk_ids, reference.topk_ids)
        # batch row 1 of two against a batch of one: the whole pass may round otherwise
        config = tiny_llama.model.config  # through every block, then the unembedding
        terms = forward_terms(config, positions=frame.index + 1) + sizes(config)[0]
        dlogp = lens_dlogp(tiny_llama, reference.hidden[-1], terms).item()
        np.testing.assert_allclose(g.topk_probs, reference.topk_probs, rtol=dlogp)
        assert np.array_equal(g.lens_ids, reference.lens_ids) and g.text == reference.text
    assert any(f.token_id != f.ghost.token_id for f in changed)  # and the answers part
    assert all(f.ghost is None for f in _run(tiny_llama, ablate=["mlp:0"], ghost=False))


def test_switched_on_mid_answer_it_applies_from_the_next_token(tiny_llama):
    plain = _run(tiny_llama, max_tokens=10)
    asked = iter([None, None, interventions_from(("mlp:0",), ()), None, None])
    frames = list(generate_frames(
        tiny_llama, PROMPT, GenerationSettings(max_tokens=10, temperature=0.9, seed=3), EVERY,
        changes=lambda: next(asked, None)))  # fmt: skip
    generated = [f for f in frames if not f.is_prompt]
    assert [f.changed for f in generated[:3]] == [(), (), ("mlp:0",)]
    n_prompt = len(frames) - len(generated)
    before = [f.token_id for f in plain[: n_prompt + 2]]
    assert [f.token_id for f in frames[: n_prompt + 2]] == before  # untouched until then
    untouched = [f.token_id for f in plain[n_prompt + 2 :]]
    assert [f.ghost.token_id for f in generated[2:]] == untouched[: len(generated) - 2]
    asked = iter([interventions_from(("mlp:0",), ()), None, Interventions(), None])
    frames = list(generate_frames(
        tiny_llama, PROMPT, GenerationSettings(max_tokens=6, temperature=0.9, seed=3), EVERY,
        changes=lambda: next(asked, None)))  # fmt: skip
    assert [f.ghost is not None for f in frames if not f.is_prompt][:4] == [True, True, False,
                                                                            False]  # fmt: skip


def test_a_trace_keeps_the_lens_the_interventions_and_the_ghost(tiny_llama_dir, tiny_llama,
                                                                 tmp_path):  # fmt: skip
    out = tmp_path / "changed.npz"
    result = neuroweb_here("trace", "--model", str(tiny_llama_dir), "--prompt", PROMPT,
                           "--tokens", "6", "--seed", "3", "--ablate", "mlp:1", "--out",
                           str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = read_trace(out)
    assert trace.meta["format_version"] == 4
    assert trace.meta["interventions"] == {"ablate": ["mlp:1"], "steer": [], "ghost": True}
    frames = frames_from_trace(trace)
    assert all(f.changed == ("mlp:1",) and f.ghost is not None for f in frames)
    plain = tmp_path / "plain.npz"
    assert neuroweb_here("trace", "--model", str(tiny_llama_dir), "--prompt", PROMPT, "--tokens",
                         "6", "--seed", "3", "--out", str(plain)).returncode == 0  # fmt: skip
    untouched = frames_from_trace(read_trace(plain))
    assert [f.ghost.token_id for f in frames] == [f.token_id for f in untouched]
    assert [f.ghost.text for f in frames] == [f.text for f in untouched]
    for a, b in zip(frames, untouched, strict=True):
        assert np.array_equal(a.ghost.lens_ids, b.lens_ids)
        # batch row 1 of two against a batch of one (topk_probs stay float32 in a trace)
        config = tiny_llama.model.config  # through every block, then the unembedding
        terms = forward_terms(config, positions=a.index + 1) + sizes(config)[0]
        dlogp = lens_dlogp(tiny_llama, b.hidden[-1], terms).item()
        np.testing.assert_allclose(a.ghost.topk_probs, b.topk_probs, rtol=dlogp)
    render = neuroweb("render", "--trace", str(out), "--out", str(tmp_path / "v.mp4"), "--size",
                      "160x90", "--fps", "10", "--no-audio")  # fmt: skip
    assert render.returncode == 0, render.stderr


def test_bad_interventions_get_one_line(tiny_llama_dir, tmp_path):
    out = str(tmp_path / "x.npz")
    base = ("trace", "--model", str(tiny_llama_dir), "--prompt", "hi", "--out", out)
    _assert_user_error(neuroweb(*base, "--ablate", "mlp"), "--ablate mlp: expected")
    _assert_user_error(neuroweb(*base, "--steer", "3:x:a|b"), "--steer 3:x:a|b: expected")
    _assert_user_error(neuroweb_here(*base, "--ablate", "mlp:99"), "the model has blocks 0–2")
    _assert_user_error(neuroweb_here(*base, "--ablate", "head:1.40"), "block 1 has heads 0–3")
    assert parse_ablation("head:3.7").spec == "head:3.7"


@pytest.mark.slow
def test_steering_smollm2_with_a_contrast_pair_raises_a_chosen_word(smollm2):
    """Activation addition at block 8 with "I love you" − "I hate you", scale 2: the
    probability of " love" as the next word after "I think that you are a person I" rises from
    0.0061 to 0.035 (×5.8, measured; printed again here)."""
    gen = GenerationSettings(max_tokens=1, temperature=0.0, raw=True)
    love = smollm2.tokenizer(" love", add_special_tokens=False)["input_ids"][0]
    prompt = "I think that you are a person I"

    def probability(steer: tuple[str, ...]) -> float:
        iv = interventions_from((), steer)
        frames = list(generate_frames(smollm2, prompt, gen, CaptureSettings(candidates=50),
                                      interventions=iv, ghost=False))  # fmt: skip
        last = [f for f in frames if f.is_prompt][-1]
        hits = np.flatnonzero(last.topk_ids == love)
        return float(last.topk_probs[hits[0]]) if hits.size else 0.0

    with torch.no_grad():
        before, after = probability(()), probability(("8:2:I love you|I hate you",))
    print(f"p(' love') {before:.4f} → {after:.4f}: ×{after / max(before, 1e-9):.1f}")
    assert before > 0 and after > 3 * before


@pytest.mark.slow
def test_smollm2_s_lens_rows_are_the_exact_lens_within_their_stated_precision(
        smollm2, torch_threads):  # fmt: skip
    """Each lensed row against the lens computed here the plain way (final norm, the whole
    float32 unembedding, softmax): the same top words and probabilities (the capture's product
    is float32 too, README)."""
    frames = list(generate_frames(smollm2, PROMPT, GenerationSettings(max_tokens=6,
                                                                       temperature=0.0),
                                  CaptureSettings()))  # fmt: skip
    parts = smollm2.parts
    for frame in frames[-4:]:
        rows = [r for r in range(frame.lens_ids.shape[0]) if frame.lens_ids[r, 0] >= 0]
        assert rows == [0, 4, 8, 12, 16, 20, 24, 28, 30]
        with torch.no_grad():
            x = parts.final_norm(torch.from_numpy(frame.hidden[rows].astype(np.float32)))
            exact = torch.softmax(parts.unembed(x), dim=-1).topk(5, dim=-1)
        assert np.array_equal(frame.lens_ids[rows], exact.indices.numpy())
        # the same rows in another product, and another float32 normaliser
        dlogp = lens_dlogp(smollm2, frame.hidden[rows])  # [rows, 1]
        assert_within(frame.lens_probs[rows], exact.values.numpy(), exact.values.numpy() * dlogp)


def test_the_lens_normaliser_equals_torch_s_on_logits_of_any_spread():
    """The lens's log Σ exp (which keeps exp() out of denormals) against torch's own: logits
    spread over hundreds (an early layer through the final norm), and -inf entries."""
    from visualizer.model.lens import _logsumexp

    logits = torch.randn(2, 9, 4096, generator=torch.Generator().manual_seed(0)) * 60
    logits[0, 0, :7] = float("-inf")
    # each is max + log Σ exp(z − max): the float32 sum over 4096 terms moves the log by
    # drift(float32, 4096), and adding the max rounds at the result's size (up to ~250 here)
    assert torch.allclose(_logsumexp(logits), logits.logsumexp(dim=-1, keepdim=True),
                          rtol=drift(torch.float32), atol=drift(torch.float32, 4096))  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_under_the_capture_the_model_s_logits_are_its_own_and_its_lens_is_exact(
        family, family_dir, torch_threads):  # fmt: skip
    """The capture's hooks run the unembedding themselves (its layer is handed no positions),
    the model's rows and the lensed ones in one product: the model's logits are those it gives
    without the capture, and every lensed row's words and probabilities are those of the plain
    lens (final norm, the layer's own product, softmax) taken after the capture."""
    from visualizer.model.capture import capture
    from visualizer.model.lens import lens_rows, logit_lens
    from visualizer.model.load import load_model

    lm = load_model(str(family_dir(family)))
    layers = len(lm.parts.blocks)
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    ran = []
    with torch.no_grad():
        stock = lm.model(input_ids=ids).logits
        spy = lm.parts.unembed.register_forward_hook(lambda m, a, o: ran.append(a[0].shape[-2]))
        try:
            with capture(lm.model, lm.parts, (lens_rows(layers, 1), 5)) as rec:
                hooked = lm.model(input_ids=ids).logits
                captured = rec.take(ids.shape[1])
        finally:
            spy.remove()
        hidden = torch.from_numpy(captured.hidden)
        plain_ids, plain_probs = logit_lens(hidden, lm.parts, tuple(range(layers)), 5)
    assert ran == [0]
    # the same final-normed rows, unembedded in one product with the lensed ones: a sum over
    # d at the size of the largest logit
    atol = float(drift(torch.float32, sizes(lm.model.config)[0], stock.abs().max().item()))
    torch.testing.assert_close(hooked, stock, rtol=0, atol=atol)
    assert np.array_equal(captured.lens_ids[:, :layers], plain_ids[:, :layers].numpy())
    plain = plain_probs[:, :layers].numpy()  # [S, L, k]
    dlogp = lens_dlogp(lm, captured.hidden[:, :layers])  # [S, L, 1]
    assert_within(captured.lens_probs[:, :layers], plain, plain * dlogp)


def test_an_unembedding_the_hooks_cannot_run_is_lensed_as_the_model_runs_it(tiny_llama_dir):
    """A layer that is not a plain nn.Linear (a quantized one, say) runs its own product for
    the model; the lens then takes its rows through it after the pass, with the same words."""
    from visualizer.model.load import load_model

    class Wrapped(torch.nn.Linear):
        """An nn.Linear by another type, as a quantizing library's layer would be."""

    lm = load_model(str(tiny_llama_dir))
    settings = GenerationSettings(max_tokens=4, temperature=0.0)
    folded = list(generate_frames(lm, PROMPT, settings, EVERY))
    lm.parts.unembed.__class__ = Wrapped
    ran = []
    spy = lm.parts.unembed.register_forward_hook(lambda m, a, o: ran.append(a[0].shape[-2]))
    try:
        unfolded = list(generate_frames(lm, PROMPT, settings, EVERY))
    finally:
        spy.remove()
    assert 0 not in ran
    for a, b in zip(folded, unfolded, strict=True):
        assert a.token_id == b.token_id and np.array_equal(a.lens_ids, b.lens_ids)
        # the same rows, unembedded in the model's product or in one after the pass
        assert_within(a.lens_probs, b.lens_probs, b.lens_probs * lens_dlogp(lm, b.hidden))


def test_an_unembedding_over_the_packing_limit_runs_as_the_layer_s_own_product(monkeypatch):
    """oneDNN's packed copy is made only up to PACK_LIMIT bytes; above it the hooks run the
    layer's own F.linear, bit for bit."""
    from visualizer.model import unembed

    layer = torch.nn.Linear(64, 512)
    x = torch.randn(9, 64)
    monkeypatch.setattr(unembed, "PACK_LIMIT", 512 * 64 * 4 - 1)
    assert torch.equal(unembed.product(layer)(x), torch.nn.functional.linear(x, layer.weight,
                                                                             layer.bias))


def test_a_lens_probability_prints_the_same_after_a_trace_and_the_wire(tmp_path):
    """Printed probabilities never round into a claim (features.percent): 0.9999 is ">99%"
    and 1e-9 is "<1%". Stored as float16, a trace and a reduced frame on the wire made them
    1.0 and 0, "100%" and "0%"; they keep float32 now, and print as the live frame did."""
    from dataclasses import replace

    from tests.synthetic import synthetic_frame
    from visualizer import wire
    from visualizer.detail import detail_named
    from visualizer.features import percent
    from visualizer.trace import frames_from_trace, read_trace, write_trace

    layers = 4
    frame = synthetic_frame(0, np.ones((layers + 1, 8)), np.ones((layers, 16)),
                            np.full((layers, 2, 1), 1.0))  # fmt: skip
    ids = np.full((layers + 1, 5), -1, np.int32)
    ids[[0, layers]] = 7
    probs = np.zeros((layers + 1, 5), np.float32)
    probs[0, 0], probs[layers, 0] = 1e-9, 0.9999
    frame = replace(frame, lens_ids=ids, lens_probs=probs)
    write_trace(tmp_path / "t.npz", [frame], {"model": "test", "prompt": "x"})
    (traced,) = frames_from_trace(read_trace(tmp_path / "t.npz"))
    parts = wire.frame_to(frame, 1, 1, detail_named("reduced"))
    header, buffers = wire.unpack(parts, 1 << 24, wire.ServerMessage)
    sent = wire.frame_from(header, buffers)
    for back in (traced, sent):
        assert [percent(float(back.lens_probs[r, 0])) for r in (0, layers)] == ["<1%", ">99%"]
