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
                lambda m, a, o, i=i: seen["route"].__setitem__(i, (o[2], o[1]))))  # fmt: skip
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


def assert_candidates_follow_the_logits(frames, logits: np.ndarray) -> None:
    """Each frame's top-k ids and probabilities and its entropy equal those of softmax over
    the full pass's logits at its position (ids compared where probabilities are not tied)."""
    for t, frame in enumerate(frames):
        z = logits[t].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        k = len(frame.topk_ids)
        order = np.argsort(-p, kind="stable")[:k]
        np.testing.assert_allclose(frame.topk_probs, p[order], atol=2e-5)
        distinct = np.abs(np.diff(p[order])) > 1e-5  # ties may come in either order
        keep = np.concatenate([[True], distinct]) & np.concatenate([distinct, [True]])
        assert np.array_equal(np.asarray(frame.topk_ids)[keep], order[keep]), t
        entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
        assert abs(frame.entropy - entropy) < 1e-3 * max(1.0, entropy), (t, frame.entropy)


@pytest.fixture(scope="module", params=FAMILIES)
def family_run(request, family_dir):
    lm = load_model(str(family_dir(request.param)))
    gen = GenerationSettings(temperature=0.0, max_tokens=TOKENS)
    frames = list(generate_frames(lm, PROMPT, gen, CaptureSettings(prefill_chunk=5)))
    return request.param, lm, frames


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-9))


def test_the_capture_equals_one_eager_pass(family_run):
    family, lm, frames = family_run
    n_prompt = sum(f.is_prompt for f in frames)
    assert n_prompt > 2 * WINDOW  # the sliding windows are really exercised
    ids = [f.token_id for f in frames]
    ref = eager_reference(lm.model, ids)
    for t, frame in enumerate(frames):
        assert frame.context_start == 0
        assert _rel(frame.hidden, ref["hidden"][t]) < 1e-3, (family, t)
        assert frame.attn.shape[-1] == t + 1
        assert np.abs(frame.attn - ref["attn"][t, :, :, : t + 1]).max() < 1e-4, (family, t)
        assert np.array_equal(frame.attn_sink, frame.attn[:, :, 0])
        np.testing.assert_allclose(frame.attn.sum(-1), 1.0, atol=1e-5)
        for block, write in ref["write"].items():
            assert _rel(frame.mlp_write[block], write[0, t].numpy()) < 1e-3, (family, t, block)
        for block, act in ref["act"].items():
            assert _rel(frame.mlp[block], act[0, t].numpy()) < 1e-3, (family, t, block)
        for block, (chosen, weights) in ref["route"].items():
            expected = np.zeros(frame.experts.shape[-1], np.float32)
            expected[chosen[t].numpy()] = weights[t].numpy()
            np.testing.assert_allclose(frame.experts[block], expected, atol=1e-6)
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
    assert_candidates_follow_the_logits(frames, ref["logits"])


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
    assert value("embed_scale") == pytest.approx(width**0.5 if "gemma" in family else 1.0)
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
        assert v["scale"] == pytest.approx((scalar or v["head_dim"]) ** -0.5)
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
        for name in ("hidden", "mlp", "mlp_write", "attn"):
            assert np.allclose(getattr(a, name), getattr(b, name), atol=1e-6), name
