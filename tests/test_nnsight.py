"""`neuroweb trace --engine nnsight`: the same trace as neuroweb's own hooks, made through
nnsight; its remote (NDIF) request built and run here without the network."""

import numpy as np
import pytest

from tests.test_cli import _assert_user_error, neuroweb
from visualizer.config import load_settings
from visualizer.trace import read_trace

pytest.importorskip("nnsight")


def _same_run(a: dict, b: dict) -> None:
    """Two traces of one greedy run, each kept in float16: equal within its precision."""
    assert a.keys() == b.keys()
    for name in ("token_ids", "is_prompt", "context_start", "topk_ids", "token_text"):
        assert np.array_equal(a[name], b[name]), name
    for name in ("hidden", "mlp", "mlp_write", "attn", "attn_sink", "topk_probs", "entropy"):
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        scale = np.abs(y).max(axis=-1, keepdims=True) + 1e-6 if y.ndim > 1 else 1.0
        assert x.shape == y.shape and (np.abs(x - y) / scale).max() < 2e-3, name


@pytest.mark.slow
def test_the_nnsight_trace_of_smollm2_equals_the_hook_trace(tmp_path):
    from visualizer.model.nnsight_engine import nnsight_trace
    from visualizer.tracer import run_model

    settings = load_settings("default", {"generation": {"temperature": 0.0, "max_tokens": 10}})
    prompt = "Explain in one sentence why the sky is blue."
    hooks, _ = run_model(settings, prompt)
    through, meta = nnsight_trace(settings, prompt, None)
    assert meta["engine"] == "nnsight" and meta["architecture"]["name"]["value"] == (
        "SmolLM2-135M-Instruct")  # fmt: skip
    _same_run(through.arrays(), hooks.arrays())


def test_a_remote_request_is_built_and_checked_without_the_network(tiny_llama_dir, tmp_path):
    """`--remote local`: the request serialised as NDIF would receive it, run here."""
    args = ("--prompt", "Hello there", "--tokens", "6", "--temperature", "0", "--model",
            str(tiny_llama_dir))  # fmt: skip
    remote, hooks = tmp_path / "remote.npz", tmp_path / "hooks.npz"
    result = neuroweb("trace", "--engine", "nnsight", "--remote", "local", *args, "--out",
                      str(remote))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("wrote")  # no warnings, no noise
    assert neuroweb("trace", *args, "--out", str(hooks)).returncode == 0
    trace = read_trace(remote)
    assert any("its weights are not on this machine" in n for n in trace.meta["notes"])
    _same_run(trace.arrays, read_trace(hooks).arrays)


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
