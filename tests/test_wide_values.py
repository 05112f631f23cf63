"""No value lost to float16: a model whose residual stream holds values beyond 65504 (float16's
largest; Gemma's does) keeps them finite through a trace, the pipe from the model process and
the wire, at every detail, and the measures drawn from them stay numbers."""

import numpy as np
import pytest
import torch
import transformers

from tests.conftest import _save_tiny, tiny_llama_config
from tests.test_server import Served, _answer
from visualizer import measures
from visualizer.config import load_settings
from visualizer.trace import frames_from_trace, read_trace

FLOAT16_MAX = float(np.finfo(np.float16).max)


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory, smollm2_folder):
    """A tiny Llama whose embedding rows are scaled to ~10^6: every residual stream row is far
    beyond float16 (RMSNorm keeps what the blocks read ordinary)."""
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=False))
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(5e7)
    return _save_tiny(model, tmp_path_factory.mktemp("wide-llama"), smollm2_folder)


def _finite_and_wide(frames: list) -> None:
    assert frames
    widest = 0.0
    for frame in frames:
        for name in ("hidden", "mlp", "mlp_write", "attn", "attn_sink", "topk_probs",
                     "lens_probs"):  # fmt: skip
            values = getattr(frame, name)
            assert np.isfinite(values).all(), name
        widest = max(widest, float(np.abs(frame.hidden).max()))
        for measure in (measures.residual_norm, measures.update_ratio, measures.mlp_share):
            assert np.isfinite(measure(frame)).all(), measure.__name__
    assert widest > 10 * FLOAT16_MAX  # the test means something: values float16 cannot hold


def _greedy(model: str, **model_settings) -> dict:
    return {"model": {"name": model, **model_settings},
            "generation": {"temperature": 0.0, "max_tokens": 4}}  # fmt: skip


@pytest.mark.parametrize("detail", ["full", "reduced", "compact"])
def test_the_pipe_keeps_them(wide_dir, detail):
    from visualizer.sources.local import LocalSource

    settings = load_settings("default", _greedy(str(wide_dir), detail=detail, threads=1))
    _finite_and_wide(_answer(LocalSource(settings)))


def test_a_trace_keeps_them(wide_dir, tmp_path):
    from tests.test_cli import neuroweb_here

    out = tmp_path / "wide.npz"
    result = neuroweb_here("trace", "--model", str(wide_dir), "--prompt", "Hi there.", "--tokens",
                           "4", "--temperature", "0", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    _finite_and_wide(frames_from_trace(read_trace(out)))


def test_the_wire_keeps_them_at_every_detail(wide_dir):
    from visualizer.sources.local import LocalSource
    from visualizer.sources.remote import RemoteSource

    local = _answer(LocalSource(load_settings("default", _greedy(str(wide_dir), threads=1))))
    server = Served(str(wide_dir), "--threads", "1").start()
    try:
        for detail in ("full", "reduced", "compact"):  # one client after another, one server
            settings = load_settings("default", _greedy("", source=server.address,
                                                        detail=detail))  # fmt: skip
            remote = _answer(RemoteSource(settings))
            _finite_and_wide(remote)
            for a, b in zip(remote, local, strict=True):
                # full: float32 both ways, the same numbers; compact: int8 with a float32 scale
                # per row, within half a step (row max / 127 / 2) of each value; reduced: the
                # hidden rows beyond float16 stay float32, so the same numbers
                step = np.abs(b.hidden).max(axis=-1, keepdims=True) / 127
                tolerance = step / 2 * (1 + 1e-6) if detail == "compact" else 0.0
                assert np.all(np.abs(a.hidden - b.hidden) <= tolerance), detail
    finally:
        server.stop()
