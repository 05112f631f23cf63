"""Every family of tests/families.py, loaded as a user's --model folder:
- the capture equals one eager full-sequence forward pass of transformers (prompts longer than
  the sliding windows, softcapped and q/k-normed attention, routed experts);
- `neuroweb inspect --json` states the facts this test reads on its own from the config and
  the modules."""

import json

import numpy as np
import pytest
import torch

from tests.families import FAMILIES, WINDOW
from tests.tolerance import drift, forward_terms, sizes, softmax_drift
from visualizer.cli import main
from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.model.generate import generate_frames
from visualizer.model.load import load_model

PROMPT = "Explain in one sentence why the sky is blue, and why sunsets are red."
TOKENS = 10


def _blocks(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def _first(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def eager_reference(model, ids: list[int]) -> dict:
    """Eager attention with output_attentions; block outputs, MLP internals and routing by
    hooks on modules named the way each family's code names them."""
    seen = {"hidden": [], "act": {}, "write": {}, "route": {}}
    blocks = _blocks(model)
    hooks = [blocks[0].register_forward_pre_hook(
        lambda m, a, k: seen["hidden"].append(_first(a, k)), with_kwargs=True)]  # fmt: skip
    for i, block in enumerate(blocks):
        hooks.append(block.register_forward_hook(
            lambda m, a, o: seen["hidden"].append(o[0] if isinstance(o, tuple) else o)
        ))  # fmt: skip
        mlp = block.mlp
        down = getattr(mlp, "down_proj", None) or getattr(mlp, "c_proj", None)
        if isinstance(down, torch.nn.Module):  # a dense MLP
            hooks.append(down.register_forward_pre_hook(
                lambda m, a, i=i: seen["act"].__setitem__(i, a[0])))  # fmt: skip
        else:  # routed: the router returns (logits, top-k weights, top-k ids)
            hooks.append(mlp.gate.register_forward_hook(
                lambda m, a, o, i=i: seen["route"].__setitem__(i, (o[2], o[1], o[0]))))  # fmt: skip
        last = getattr(block, "post_feedforward_layernorm", None) or mlp
        hooks.append(last.register_forward_hook(
            lambda m, a, o, i=i: seen["write"].__setitem__(i, o)))  # fmt: skip
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
        for h in hooks:
            h.remove()
    seen["hidden"] = torch.cat(seen["hidden"], 0).transpose(0, 1).numpy()  # [T, L+1, d]
    seen["attn"] = torch.cat(out.attentions, 0).permute(2, 0, 1, 3).numpy()  # [T, L, H, T]
    seen["logits"] = out.logits[0].float().numpy()  # [T, V]
    return seen


def logit_drift(config, logits: np.ndarray, positions: int) -> np.ndarray:
    """How far a frame's logits [T, V] (its own path: chunked prefill, a KV cache, sdpa) and
    one eager full pass's may differ, each in float32: the path to a logit runs through every
    block and the unembedding, a sum over hidden_size, at the size of the largest logit of its
    position (SmolLM2: 4 · eps · √(99,600 + 576) · 38 ≈ 5.7e-3; measured at most 1.1e-4)."""
    d, _, _, _ = sizes(config)
    terms = forward_terms(config, positions=positions) + d
    return drift(np.float32, terms, np.abs(logits).max(axis=-1))  # [T]


def assert_candidates_follow_the_logits(frames, logits: np.ndarray, config,
                                        positions: int | None = None) -> None:  # fmt: skip
    """Each frame's top-k ids and probabilities and its entropy equal those of softmax over
    the full pass's logits at its position (ids compared where probabilities are not tied),
    within what float32 rounding on the two paths allows (over `positions`, len(logits) if
    None)."""
    drifts = logit_drift(config, logits, positions or len(logits))
    for t, frame in enumerate(frames):
        z = logits[t].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        k = len(frame.topk_ids)
        order = np.argsort(-p, kind="stable")[:k]
        # log p of each side within softmax_drift: the logits' drift, twice, and the frame's
        # float32 normaliser over the vocabulary; p itself within p times that
        dlogp = float(softmax_drift(drifts[t], z.size))
        np.testing.assert_allclose(frame.topk_probs, p[order], rtol=dlogp, atol=0)
        # two candidates closer than both their tolerances may come in either order
        distinct = -np.diff(p[order]) > dlogp * (p[order][:-1] + p[order][1:])
        keep = np.concatenate([[True], distinct]) & np.concatenate([distinct, [True]])
        assert np.array_equal(np.asarray(frame.topk_ids)[keep], order[keep]), t
        entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
        # H = -Σ p log p: with every log p off by dlogp and p by p · dlogp, H moves by at most
        # dlogp · Σ p |log p + 1| ≤ dlogp · (H + 1); the float32 sum of V terms adds its own
        tol = dlogp * (entropy + 1) + drift(np.float32, z.size, entropy)
        assert abs(frame.entropy - entropy) <= tol, (t, frame.entropy, entropy, tol)


def assert_hidden_matches(hidden: np.ndarray, ref: np.ndarray, config, positions: int,
                          where=()) -> None:  # fmt: skip
    """A frame's residual stream [L+1, d] against the reference pass's: row l has been
    through l blocks in float32 on each side, so within drift(float32, forward_terms(l), its
    largest value); row 0, the embedding, is the same lookup on both sides: exactly equal."""
    for row in range(hidden.shape[0]):
        tol = drift(np.float32, forward_terms(config, row, positions), np.abs(ref[row]).max())
        err = np.abs(hidden[row].astype(np.float64) - ref[row]).max()
        assert err <= tol, (*where, row, err, tol)


def assert_attention_matches(attn: np.ndarray, ref: np.ndarray, config, where=()) -> None:
    """Attention weights [L, H, n] against the reference's. A weight p = exp(s − lse) moves by
    p · softmax_drift when each score s may move by Δs; block l's scores come from the stream
    after l blocks and a q·k sum over head_dim terms: Δs = drift(float32, that many, S). S,
    the scores' size, is read off the row: max |log p|, how far below the row's log-sum-exp
    its lowest score lies (SmolLM2's scores, measured per block: 9–37, against 9–44 for
    this). Weights under float32's smallest normal number may be flushed to 0 on one side."""
    _, _, head_dim, _ = sizes(config)
    n = attn.shape[-1]
    for block in range(attn.shape[0]):
        p = ref[block].astype(np.float64)  # [H, n]
        logp = np.log(p, where=p > 0, out=np.zeros_like(p))
        size = np.maximum(1.0, np.abs(logp).max(axis=-1, keepdims=True))  # [H, 1]
        scores = drift(np.float32, forward_terms(config, block, n) + head_dim, size)
        tol = p * softmax_drift(scores, n) + np.finfo(np.float32).tiny
        err = np.abs(attn[block] - p)
        assert (err <= tol).all(), (*where, block, err.max(), tol.flat[err.argmax()])
        # each row sums to 1 within its float32 normaliser and the float32 sum here: 2n terms
        sums = attn[block].sum(-1, dtype=np.float32)
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=drift(np.float32, 2 * n))


@pytest.fixture(scope="module", params=FAMILIES)
def family_run(request, family_dir, torch_threads):
    lm = load_model(str(family_dir(request.param)))
    gen = GenerationSettings(temperature=0.0, max_tokens=TOKENS)
    frames = list(generate_frames(lm, PROMPT, gen, CaptureSettings(prefill_chunk=5)))
    return request.param, lm, frames


def test_the_capture_equals_one_eager_pass(family_run):
    family, lm, frames = family_run
    n_prompt = sum(f.is_prompt for f in frames)
    assert n_prompt > 2 * WINDOW  # the sliding windows are really exercised
    ids = [f.token_id for f in frames]
    ref = eager_reference(lm.model, ids)
    d, *_ = sizes(lm.model.config)
    for t, frame in enumerate(frames):
        assert frame.context_start == 0
        assert_hidden_matches(frame.hidden, ref["hidden"][t], lm.model.config, t + 1, (family, t))
        assert frame.attn.shape[-1] == t + 1
        assert_attention_matches(frame.attn, ref["attn"][t, :, :, : t + 1], lm.model.config,
                                 (family, t))  # fmt: skip
        assert np.array_equal(frame.attn_sink, frame.attn[:, :, 0])
        for block, write in ref["write"].items():  # through blocks 0..block, its MLP included
            w = write[0, t].numpy()
            tol = drift(np.float32, forward_terms(lm.model.config, block + 1, t + 1),
                        np.abs(w).max())  # fmt: skip
            assert np.abs(frame.mlp_write[block] - w).max() <= tol, (family, t, block)
        for block, act in ref["act"].items():  # the stream after `block` blocks, then its
            a = act[0, t].numpy()  # attention's o_proj and the MLP's gate/up: 2 more sums
            tol = drift(np.float32, forward_terms(lm.model.config, block, t + 1) + 2 * d,
                        np.abs(a).max())  # fmt: skip
            assert np.abs(frame.mlp[block] - a).max() <= tol, (family, t, block)
        for block, (chosen, weights, logits) in ref["route"].items():
            expected = np.zeros(frame.experts.shape[-1], np.float32)
            expected[chosen[t].numpy()] = weights[t].numpy()
            # a softmax over the router's logits, which come from the stream after `block`
            # blocks, its attention and a sum over d, at the size of its largest logit
            size = logits[t].abs().max().item()
            router = drift(np.float32, forward_terms(lm.model.config, block, t + 1) + 2 * d, size)
            dw = float(softmax_drift(router, 2 * expected.size))  # and the top-k's renorming
            np.testing.assert_allclose(frame.experts[block], expected, rtol=dw, atol=0)
            assert not frame.mlp[block].any()  # not captured in MoE blocks, and said so
    assert ref["route"] or frame.experts.shape[-1] == 0
    if ref["route"]:
        assert any("MoE blocks" in note for note in lm.architecture.notes)
    sliding = [i for i, b in enumerate(lm.architecture.block) if b.attention == "sliding"]
    for block in sliding:  # a sliding block never sees further back than its window
        last = frames[-1].attn[block]
        assert not last[:, : -WINDOW].any() and last[:, -WINDOW:].all()


def test_top_candidates_and_entropy_equal_the_full_pass_logits(family_run):
    _, lm, frames = family_run
    ref = eager_reference(lm.model, [f.token_id for f in frames])
    assert_candidates_follow_the_logits(frames, ref["logits"], lm.model.config)


def test_greedy_answers_equal_transformers_generate(family_run):
    family, lm, frames = family_run
    n_prompt = sum(f.is_prompt for f in frames)
    ids = [f.token_id for f in frames]
    with torch.no_grad():
        expected = lm.model.generate(
            torch.tensor([ids[:n_prompt]]), max_new_tokens=TOKENS, do_sample=False,
            attention_mask=torch.ones(1, n_prompt, dtype=torch.long),
        )[0, n_prompt:].tolist()  # fmt: skip
    assert ids[n_prompt:] == expected[: len(ids) - n_prompt], family


# --- inspect: what the config and modules say, read here on their own -------------------------

NORMS = {  # in the order the block runs them, as each family's modeling code does
    "llama": [("input_layernorm", "before attention"),
              ("post_attention_layernorm", "before the MLP")],
    "gemma2": [("input_layernorm", "before attention"),
               ("post_attention_layernorm", "after attention, before ⊕"),
               ("pre_feedforward_layernorm", "before the MLP"),
               ("post_feedforward_layernorm", "after the MLP, before ⊕")],
    "gpt2": [("ln_1", "before attention"), ("ln_2", "before the MLP")],
}  # fmt: skip
NORMS["gemma3"] = NORMS["gemma2"]
for _family in ("qwen2", "mistral", "phi3", "qwen2_moe", "mixtral", "smollm3"):
    NORMS[_family] = NORMS["llama"]
ACTIVATION = {"silu": "SiLU", "gelu_pytorch_tanh": "GELU (tanh)", "gelu_new": "GELU (tanh)"}


def _inspect_json(capsys, folder) -> dict:
    assert main(["inspect", "--model", str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_s_text_groups_blocks_alike_and_names_a_lone_one(family_dir, capsys):
    """Gemma 3's five sliding blocks to one global: one row for blocks 0–4 (their sources
    differ only by the block's own index) and one for block 5, not six rows."""
    assert main(["inspect", "--model", str(family_dir("gemma3"))]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("attention ")]  # fmt: skip
    assert [row.split(None, 1)[1] for row in rows] == [
        "blocks 0–4: sliding, window 8", "block 5: global"]  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_inspect_states_what_the_config_and_modules_say(family, family_dir, capsys):
    import transformers

    folder = family_dir(family)
    got = _inspect_json(capsys, folder)
    config = transformers.AutoConfig.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    cfg = config.to_dict()
    gpt2 = family == "gpt2"
    value = lambda key: got[key]["value"]  # noqa: E731

    width = cfg.get("hidden_size") or cfg["n_embd"]
    heads = cfg.get("num_attention_heads") or cfg["n_head"]
    assert value("family") == cfg["model_type"]
    assert value("blocks") == (cfg.get("num_hidden_layers") or cfg["n_layer"])
    assert value("width") == width and value("vocab") == cfg["vocab_size"]
    assert value("context") == (cfg.get("max_position_embeddings") or cfg.get("n_positions"))
    assert value("tied") == cfg["tie_word_embeddings"]
    assert value("final_softcap") == cfg.get("final_logit_softcapping")
    # measured in float32: √width rounded, times a weight rounded, over that weight
    embed_scale = width**0.5 if "gemma" in family else 1.0
    assert value("embed_scale") == pytest.approx(embed_scale, rel=float(drift(np.float32, 3)))
    assert value("final_norm") == ("LayerNorm" if gpt2 else "RMSNorm")
    assert value("positions") == ("learned" if gpt2 else "RoPE")
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" in rope:
        assert value("rope_theta") == {"all": rope["rope_theta"]}
    elif rope:
        assert value("rope_theta") == {k: v["rope_theta"] for k, v in rope.items()}
    for i, (block, described) in enumerate(zip(_blocks(model), got["block"], strict=True)):
        v = {k: item["value"] for k, item in described.items() if isinstance(item, dict)
             and "value" in item}  # fmt: skip
        assert v["heads"] == heads
        assert v["kv_heads"] == (cfg.get("num_key_value_heads") or heads)
        attn = block.attn if gpt2 else block.self_attn
        rope = not gpt2 and bool(getattr(attn, "use_rope", True))  # SmolLM3: no_rope_layers
        assert v["rope"] == rope, (family, i)
        assert v["head_dim"] == (cfg.get("head_dim") or width // heads)
        scalar = cfg.get("query_pre_attn_scalar")
        # the module's float64 factor: one power, perhaps taken another way
        expected = (scalar or v["head_dim"]) ** -0.5
        assert v["scale"] == pytest.approx(expected, rel=float(drift(np.float64)), abs=0)
        assert v["softcap"] == cfg.get("attn_logit_softcapping")
        types = cfg.get("layer_types")
        sliding = (types[i] == "sliding_attention") if types else bool(cfg.get("sliding_window"))
        assert v["attention"] == ("sliding" if sliding else "global")
        assert v["window"] == (cfg["sliding_window"] if sliding else None)
        assert (v["qk_norm"] is not None) == hasattr(attn, "q_norm")
        first_proj = attn.c_attn if gpt2 else getattr(attn, "q_proj", None) or attn.qkv_proj
        assert (first_proj.bias is not None) == (len(v["attn_bias"]) > 0)
        norms = [(s["source"].rsplit(".", 1)[-1], s["where"]) for s in described["steps"]
                 if s["kind"] == "norm"]  # fmt: skip
        assert norms == NORMS[family], (family, i)
        kinds = {s["label"] for s in described["steps"] if s["kind"] == "norm"}
        assert kinds == {"LayerNorm" if gpt2 else "RMSNorm"}
        mlp = {k: item["value"] for k, item in described["mlp"].items()}
        routed = "Sparse" in type(block.mlp).__name__
        assert mlp["experts"] == ((cfg.get("num_experts") or cfg.get("num_local_experts"))
                                  if routed else 0)  # fmt: skip
        assert mlp["active"] == (cfg["num_experts_per_tok"] if routed else 0)
        assert mlp["gated"] == (not gpt2)
        act = cfg.get("hidden_activation") or cfg.get("hidden_act") or cfg["activation_function"]
        assert mlp["activation"] == ACTIVATION[act]
        if routed:
            assert mlp["width"] == (cfg.get("moe_intermediate_size") or cfg["intermediate_size"])
            assert bool(mlp["shared"]) == hasattr(block.mlp, "shared_expert")
        else:
            assert mlp["width"] == (cfg.get("intermediate_size") or 4 * width)
    facts = [item for item in got.values() if isinstance(item, dict)]
    for block in got["block"]:
        facts += [item for item in block.values() if isinstance(item, dict) and "value" in item]
        facts += list(block["mlp"].values())
    assert all(item["source"] for item in facts if item["value"] is not None), family


def test_a_model_that_is_not_one_gets_one_line_and_exit_2(tmp_path):
    from tests.test_cli import _assert_user_error, neuroweb

    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    _assert_user_error(neuroweb("inspect", "--model", str(tmp_path)), str(tmp_path))
    _assert_user_error(neuroweb("inspect", "--model", str(tmp_path / "nothing")), "no such")


def test_a_model_dispatched_by_accelerate_over_two_devices_gives_the_same_frames(
    tiny_llama_dir, tmp_path
):
    """accelerate's dispatch with its hooks forced, half the blocks offloaded to disk (their
    weights brought in for each pass): the capture's hooks sit beside accelerate's, and the
    frames are those of the plain model."""
    from accelerate import dispatch_model

    from visualizer.model.inspect import inspect_model
    from visualizer.model.load import LoadedModel

    gen = GenerationSettings(temperature=0.0, max_tokens=6)
    plain = list(generate_frames(load_model(str(tiny_llama_dir)), PROMPT, gen, CaptureSettings()))
    lm = load_model(str(tiny_llama_dir))
    devices = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
               "model.layers.1": "disk", "model.layers.2": "disk", "model.norm": "cpu",
               "lm_head": "cpu"}  # fmt: skip
    model = dispatch_model(lm.model, device_map=devices, offload_dir=str(tmp_path),
                           force_hooks=True)  # fmt: skip
    assert all(hasattr(m, "_hf_hook") for m in model.model.layers)
    arch, parts = inspect_model(model, lm.tokenizer, "dispatched")
    assert arch.first.steps == lm.architecture.first.steps
    dispatched = LoadedModel(model, lm.tokenizer, "dispatched", lm.folder, arch, parts)
    frames = list(generate_frames(dispatched, PROMPT, gen, CaptureSettings()))
    assert [f.token_id for f in frames] == [f.token_id for f in plain]
    for a, b in zip(frames, plain, strict=True):
        # the same numbers, but accelerate's hooks hand the kernels other tensors (copies
        # brought in from disk), which may sum in another order: float32's rounding apart
        config, n = lm.model.config, a.attn.shape[-1]
        assert_hidden_matches(a.hidden, b.hidden, config, n, ("hidden", a.index))
        assert_attention_matches(a.attn, b.attn, config, ("attn", a.index))
        d, *_ = sizes(config)
        for block in range(len(a.mlp)):
            into = forward_terms(config, block, n) + 2 * d  # the MLP's input, then gate/up
            tol = drift(np.float32, into, np.abs(b.mlp[block]).max())
            assert np.abs(a.mlp[block] - b.mlp[block]).max() <= tol, ("mlp", a.index, block)
            tol = drift(np.float32, forward_terms(config, block + 1, n),
                        np.abs(b.mlp_write[block]).max())  # fmt: skip
            assert np.abs(a.mlp_write[block] - b.mlp_write[block]).max() <= tol, ("write", block)
