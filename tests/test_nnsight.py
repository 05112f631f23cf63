"""`neuroweb trace --engine nnsight`: the same trace as neuroweb's own hooks, made through
nnsight; its remote (NDIF) request built and run here without the network."""

import numpy as np
import pytest

from tests.test_cli import _assert_user_error, neuroweb, neuroweb_here
from tests.tolerance import assert_within, drift, eps, forward_terms, lens_dlogp, sizes
from visualizer.config import load_settings
from visualizer.trace import read_trace

pytest.importorskip("nnsight")


def _same_run(a: dict, b: dict, lm) -> None:
    """Two traces of one greedy run, each engine's pass in float32 and its arrays kept in
    float16 (float32 where a value does not fit): equal within float32's drift between two
    passes through the model (tests/tolerance.py), and one rounding of each to its dtype."""
    assert a.keys() == b.keys()
    for name in ("token_ids", "is_prompt", "context_start", "topk_ids", "token_text"):
        assert np.array_equal(a[name], b[name]), name
    config = lm.model.config
    d, *_ = sizes(config)
    through = forward_terms(config, positions=len(b["token_ids"])) + d  # every block, and more
    for name in ("hidden", "mlp", "mlp_write", "attn", "attn_sink"):
        x, y = a[name], b[name]
        assert x.shape == y.shape and x.dtype == y.dtype, name
        scale = np.abs(y.astype(np.float64)).max(axis=-1, keepdims=True)
        # float32 values within drift of each other, each then rounded to its dtype by at most
        # eps/2 of the row's largest value (half a step, below the dtype's normal range)
        step = float(np.finfo(y.dtype).smallest_subnormal)
        tol = (eps(y.dtype) + drift(np.float32, through)) * scale + step
        assert_within(x, y, tol, (name,))
    # topk_probs and entropy stay float32: each token's logits within drift of the other pass's
    dlogp = lens_dlogp(lm, b["hidden"][:, -1], through)  # [T, 1]
    p, entropy = b["topk_probs"], b["entropy"]
    assert_within(a["topk_probs"], p, p * dlogp, ("topk_probs",))
    vocab = config.get_text_config().vocab_size  # as in test_families' entropy
    tol = dlogp[:, 0] * (entropy + 1) + drift(np.float32, vocab, entropy)
    assert_within(a["entropy"], entropy, tol, ("entropy",))


@pytest.mark.slow
def test_the_nnsight_trace_of_smollm2_equals_the_hook_trace(tmp_path, smollm2):
    from visualizer.model.nnsight_engine import nnsight_trace
    from visualizer.tracer import run_model

    settings = load_settings("default", {"generation": {"temperature": 0.0, "max_tokens": 10}})
    prompt = "Explain in one sentence why the sky is blue."
    hooks, _ = run_model(settings, prompt)
    through, meta = nnsight_trace(settings, prompt, None)
    assert meta["engine"] == "nnsight" and meta["architecture"]["name"]["value"] == (
        "SmolLM2-135M-Instruct")  # fmt: skip
    _same_run(through.arrays(), hooks.arrays(), smollm2)


def test_a_remote_request_is_built_and_checked_without_the_network(tiny_llama_dir, tiny_llama,
                                                                    tmp_path):  # fmt: skip
    """`--remote local`: the request serialised as NDIF would receive it, run here."""
    args = ("--prompt", "Hello there", "--tokens", "6", "--temperature", "0", "--model",
            str(tiny_llama_dir))  # fmt: skip
    remote, hooks = tmp_path / "remote.npz", tmp_path / "hooks.npz"
    result = neuroweb("trace", "--engine", "nnsight", "--remote", "local", *args, "--out",
                      str(remote))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("wrote")  # no warnings, no noise
    assert neuroweb_here("trace", *args, "--out", str(hooks)).returncode == 0
    trace = read_trace(remote)
    assert any("its weights are not on this machine" in n for n in trace.meta["notes"])
    _same_run(trace.arrays, read_trace(hooks).arrays, tiny_llama)


def test_a_remote_run_that_cannot_reach_ndif_says_so_in_one_line(tiny_llama_dir, tmp_path):
    import os

    env = {**os.environ, "NDIF_HOST": "http://127.0.0.1:9", "NDIF_API_KEY": "test"}
    result = neuroweb("trace", "--engine", "nnsight", "--remote", "--model", str(tiny_llama_dir),
                      "--prompt", "hi", "--tokens", "4", "--out", str(tmp_path / "x.npz"),
                      env=env)  # fmt: skip
    _assert_user_error(result, "--remote: the remote run failed")
    assert not (tmp_path / "x.npz").exists()
    hooks = neuroweb("trace", "--remote", "--prompt", "hi", "--out", str(tmp_path / "y.npz"))
    _assert_user_error(hooks, "--remote needs --engine nnsight")
