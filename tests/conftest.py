"""Shared fixtures: the real SmolLM2 (converted once into the user cache), tiny random models
of the same architectures saved as real Hugging Face folders so they load like any --model, and
a private Xvfb display for the tests of real windows."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

from visualizer.model.load import embedded_gguf, ensure_converted, load_model

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")

# A shell starts a background job (`make test &`) with SIGINT ignored, and every neuroweb the
# tests start would inherit that: the Ctrl-C tests then wait on processes that cannot hear it.
# The tests mean a terminal's Ctrl-C, so the suite hears it as a terminal would, and so do they.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    return ensure_converted(embedded_gguf(), lambda fraction, stage: None)


@pytest.fixture(scope="session")
def smollm2(smollm2_folder):
    return load_model("")


def _save_tiny(model: torch.nn.Module, folder: Path, tokenizer_from: Path) -> Path:
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, folder / name)
    return folder


def tiny_llama_config(**changes) -> transformers.LlamaConfig:
    """SmolLM2's architecture at toy size (the tiny Llama's, with `changes`)."""
    return transformers.LlamaConfig(**{
        "vocab_size": 49152, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "tie_word_embeddings": True, "bos_token_id": 1,
        "eos_token_id": 2, **changes})  # fmt: skip


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_folder) -> Path:
    """SmolLM2's architecture (RoPE, GQA, RMSNorm, SwiGLU) at toy size, 64 positions."""
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_llama_config())
    return _save_tiny(model, tmp_path_factory.mktemp("tiny-llama"), smollm2_folder)


@pytest.fixture(scope="session")
def shared_server(tiny_llama_dir):
    """A `neuroweb serve` of the tiny Llama for the tests that only ask it (each answer ends
    before the test does): a server's start is a process importing torch and transformers,
    6-8 s of CPU. Tests that kill, restart or count a server start their own."""
    from tests.test_server import Served

    server = Served(str(tiny_llama_dir)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, smollm2_folder) -> Path:
    """GPT-2 style (learned positions, LayerNorm, GELU, MHA) at toy size."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=49152, n_embd=32, n_layer=2, n_head=4, n_positions=128,
        bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config)
    return _save_tiny(model, tmp_path_factory.mktemp("tiny-gpt2"), smollm2_folder)


_families: dict[str, Path] = {}


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory, smollm2_folder):
    """family name → the folder of a tiny random model of it (tests/families.py), made once."""
    from tests.families import config

    def make(family: str) -> Path:
        if family not in _families:
            torch.manual_seed(0)
            model = transformers.AutoModelForCausalLM.from_config(config(family))
            folder = tmp_path_factory.mktemp(f"tiny-{family}")
            _families[family] = _save_tiny(model, folder, smollm2_folder)
        return _families[family]

    return make


@pytest.fixture(scope="module", params=[1, 2], ids=lambda n: f"{n}-thread")
def torch_threads(request):
    """torch's intra-op threads while a module's comparisons run: 1, then 2 (the CI machine's
    cores). How a kernel splits a float32 sum over threads sets the order its roundings fall
    in, so a tolerance must hold for either count; the previous count comes back after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    return load_model(str(tiny_llama_dir))


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    return load_model(str(tiny_gpt2_dir))


@pytest.fixture
def xvfb(monkeypatch):
    """A private X server for this test; DISPLAY points at it."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (.ci/run installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=(write,), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as f:
        display = f.readline().strip()
    monkeypatch.setenv("DISPLAY", f":{display}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    try:
        yield
    finally:
        server.terminate()
        server.wait(10)
