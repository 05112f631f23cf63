"""Finding a GGUF's converted copy in the cache: by the file's content hash, which is
remembered by its path, size and modification time rather than recomputed every start; and
what loading says of itself while it goes."""

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from visualizer.model.convert import _stored_state
from visualizer.model.load import (
    CACHE_LAYOUT,
    embedded_gguf,
    ensure_converted,
    gguf_cache_folder,
    gguf_cache_folders,
)


def _memo(root):
    (memo,) = (root / "models").glob("hash-*.json")
    return memo


def test_an_unchanged_file_is_found_by_its_remembered_hash(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"weights" * 1000)
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    root = tmp_path / "cache"
    assert gguf_cache_folder(gguf, root) == root / "models" / f"gguf-{sha[:24]}-v{CACHE_LAYOUT}"
    memo = _memo(root)
    known = json.loads(memo.read_text())
    assert known["sha256"] == sha
    known["sha256"] = "f" * 64  # what is remembered is what the next start goes by
    memo.write_text(json.dumps(known))
    assert gguf_cache_folder(gguf, root).name == f"gguf-{'f' * 24}-v{CACHE_LAYOUT}"


def test_a_changed_file_or_a_broken_memo_is_hashed_again(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"weights" * 1000)
    root = tmp_path / "cache"
    first = gguf_cache_folder(gguf, root)
    stat = gguf.stat()
    gguf.write_bytes(b"WEIGHTS" * 1000)  # a rewrite of the same size: its time tells
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert gguf_cache_folder(gguf, root).name == f"gguf-{sha[:24]}-v{CACHE_LAYOUT}" != first.name
    _memo(root).write_text("{not json")
    assert gguf_cache_folder(gguf, root).name == f"gguf-{sha[:24]}-v{CACHE_LAYOUT}"
    assert json.loads(_memo(root).read_text())["sha256"] == sha  # and remembered again


def test_the_converted_copy_holds_a_tied_weight_under_its_source(smollm2_folder, smollm2):
    """A loaded model's tied weight whose source is absent from the file is filled with random
    numbers first (0.17 s of every SmolLM2 start), then tied over: the file holds the source."""
    with safe_open(smollm2_folder / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    model = smollm2.model
    assert model.all_tied_weights_keys == {"lm_head.weight": "model.embed_tokens.weight"}
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_a_copy_in_an_earlier_cache_layout_is_removed(tmp_path, smollm2_folder):
    gguf = embedded_gguf()
    root = tmp_path / "cache"
    current = gguf_cache_folder(gguf, root)
    shutil.copytree(smollm2_folder, current, copy_function=os.link)  # converted already
    superseded = gguf_cache_folders(gguf, root)[0]  # layout 1
    superseded.mkdir()
    (superseded / "model.safetensors").write_bytes(b"old")
    assert ensure_converted(gguf, lambda fraction, stage: None, root=root) == current
    assert not superseded.exists() and (current / "model.safetensors").is_file()


def _tiny_llama(tied: bool) -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied,
    ))  # fmt: skip


def test_a_conversion_writes_every_weight_a_load_needs(tmp_path):
    """Tied: the source only. Untied: both. Storage shared without a declared tie (the file
    cannot share): a copy under each name, the same numbers."""
    assert "lm_head.weight" not in _stored_state(_tiny_llama(tied=True))
    assert {"lm_head.weight", "model.embed_tokens.weight"} <= set(
        _stored_state(_tiny_llama(tied=False)))  # fmt: skip
    model = _tiny_llama(tied=False)
    up = [layer.mlp.up_proj for layer in model.model.layers]
    up[1].weight = up[0].weight
    save_file(_stored_state(model), tmp_path / "m.safetensors")
    written = load_file(tmp_path / "m.safetensors")
    names = [f"model.layers.{i}.mlp.up_proj.weight" for i in (0, 1)]
    assert torch.equal(written[names[0]], written[names[1]])


def test_loading_says_its_stages_and_counts_the_weights_it_loads(tiny_llama_dir):
    """What a loading screen shows: which stage of how many ("stage 3 of 4: loading the
    weights, 12 of 29 tensors"), the bar at the stages done plus the counted share of the
    current one; no constant stood in for progress (a 70B model sat at "90%" for minutes)."""
    from visualizer.model.load import STAGES, load_model

    said: list[tuple[float, str]] = []
    load_model(str(tiny_llama_dir), progress=lambda fraction, what: said.append((fraction, what)))
    assert said[-1] == (1.0, "ready")
    n = len(STAGES)
    counted = []
    for fraction, what in said[:-1]:
        number, name = re.fullmatch(rf"stage (\d) of {n}: (.*)", what).groups()
        number = int(number)
        assert name.startswith(STAGES[number - 1])
        tensors = re.fullmatch(r".*, (\d+) of (\d+) tensors", name)
        done = int(tensors[1]) / int(tensors[2]) if tensors else 0.0
        assert fraction == pytest.approx((number - 1 + done) / n), what
        if tensors:
            counted.append((int(tensors[1]), int(tensors[2])))
    numbers = [int(re.match(r"stage (\d)", what)[1]) for _, what in said[:-1]]
    assert numbers == sorted(numbers) and set(numbers) == set(range(1, n + 1))  # in order
    with safe_open(str(tiny_llama_dir / "model.safetensors"), "pt") as f:
        stored = len(list(f.keys()))
    assert counted[-1] == (stored, stored) and len(counted) > 1  # measured, as it went


def test_a_first_start_s_conversion_says_its_steps(tmp_path):
    """The GGUF converter (a child process) says which of its steps it is on; a file that is
    not a GGUF stops it at the tokenizer, with its last error line."""
    from visualizer.errors import UserError

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"not a gguf" * 100)
    said: list[str] = []
    with pytest.raises(UserError, match="cannot convert this GGUF"):
        ensure_converted(gguf, lambda fraction, what: said.append(what), root=tmp_path / "c")
    prefix = "stage 1 of 4: converting the GGUF (first start only)"
    assert said == [prefix, f"{prefix}, step 1 of 4: importing torch and transformers",
                    f"{prefix}, step 2 of 4: reading the tokenizer from the GGUF"]  # fmt: skip


def test_a_conversion_finished_second_leaves_the_first_copy_in_place(tmp_path):
    """Two first starts at once each convert; the later one finds the folder taken and keeps it
    (a rename onto a full folder fails), and a half-made folder of no one is still an error."""
    from visualizer.model.load import settle

    def converted(name: str, text: str) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text)
        return tmp_path / name

    folder = tmp_path / "model"
    settle(converted("a.tmp1", "first"), folder)
    settle(converted("a.tmp2", "second"), folder)
    assert (folder / "config.json").read_text() == "first"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"half")
    with pytest.raises(OSError):
        settle(converted("a.tmp3", "third"), broken)
