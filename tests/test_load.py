"""Finding a GGUF's converted copy in the cache: by the file's content hash, which is
remembered by its path, size and modification time rather than recomputed every start."""

import hashlib
import json
import os

from visualizer.model.load import gguf_cache_folder


def _memo(root):
    (memo,) = (root / "models").glob("hash-*.json")
    return memo


def test_an_unchanged_file_is_found_by_its_remembered_hash(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"weights" * 1000)
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    root = tmp_path / "cache"
    assert gguf_cache_folder(gguf, root) == root / "models" / f"gguf-{sha[:24]}"
    memo = _memo(root)
    known = json.loads(memo.read_text())
    assert known["sha256"] == sha
    known["sha256"] = "f" * 64  # what is remembered is what the next start goes by
    memo.write_text(json.dumps(known))
    assert gguf_cache_folder(gguf, root).name == f"gguf-{'f' * 24}"


def test_a_changed_file_or_a_broken_memo_is_hashed_again(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"weights" * 1000)
    root = tmp_path / "cache"
    first = gguf_cache_folder(gguf, root)
    stat = gguf.stat()
    gguf.write_bytes(b"WEIGHTS" * 1000)  # a rewrite of the same size: its time tells
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert gguf_cache_folder(gguf, root).name == f"gguf-{sha[:24]}" != first.name
    _memo(root).write_text("{not json")
    assert gguf_cache_folder(gguf, root).name == f"gguf-{sha[:24]}"
    assert json.loads(_memo(root).read_text())["sha256"] == sha  # and remembered again
